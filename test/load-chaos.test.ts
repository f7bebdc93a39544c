// A whole load through the fault proxy with faults at random on 5% of all requests, of every request kind
// (single PUTs, CreateMultipartUpload, parts, Complete, the log's PUT, listings): 500 InternalError,
// 503 SlowDown, a connection reset half-way through the request body, an answer held back past the station's
// request timeout after the server did the work, and an answer cut off half-way. Then every object is downloaded
// and compared with its file, every log row checked, and the buckets searched for open multipart uploads.
//
// The seed is printed; STATION_TEST_SEED=N replays a run's sequence of faults.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditLoad, faults, mixedDrive } from './support/audit.js';
import type { Fault } from './support/fault-proxy.js';
import { setupLoadViaProxy, writeDrive } from './support/load.js';

const CHAOS: Fault[] = [
  { kind: 'status', status: 500, code: 'InternalError' },
  { kind: 'status', status: 503, code: 'SlowDown' },
  { kind: 'reset' },
  { kind: 'stall' },
  { kind: 'truncate' },
];

test('5% faults on every request kind: every object is byte-identical, every row right, no upload left open', { timeout: 240_000 }, async (t) => {
  const seed = Number(process.env.STATION_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed} (STATION_TEST_SEED=${seed} replays it)`);
  const setup = await setupLoadViaProxy(t, {
    // a stalled answer is given up after 2 s (the default is 2 minutes); 8 tries make a file's failure unlikely
    // (0.05^8) so that any error row is the station's fault, not the dice's
    s3: '  requestTimeoutMs: 2000\n',
    upload: '  maxAttempts: 8\n  maxRequests: 8\n',
  });
  const p = setup.proxy;
  writeDrive(setup.drive, mixedDrive(seed % 1000));

  // Beside the dice, one lost answer where it hurts most: a CreateMultipartUpload whose upload S3 made (the retry
  // makes a second one), a Complete S3 carried out (the retry finds no upload), an UploadPart S3 stored.
  const multipartPost = (query: URLSearchParams) => query.has('uploads');
  p.addRule({ match: (r) => r.method === 'POST' && multipartPost(r.query), fault: { kind: 'truncate' } });
  p.addRule({ match: (r) => r.method === 'POST' && r.query.has('uploadId'), fault: { kind: 'stall' } });
  p.addRule({ match: (r) => r.method === 'PUT' && r.query.get('partNumber') === '2', fault: { kind: 'truncate' } });
  // And each kind of fault at least once whatever the dice say (a few dozen draws can miss one of five kinds).
  const singlePut = (dir: string) => (r: { method: string; path: string; query: URLSearchParams }) =>
    r.method === 'PUT' && !r.query.has('partNumber') && r.path.includes(`/${dir}/`);
  p.addRule({ match: singlePut('medium'), fault: { kind: 'reset' } });
  p.addRule({ match: singlePut('small'), fault: { kind: 'status', status: 500, code: 'InternalError' } });
  p.addRule({ match: (r) => r.method === 'PUT' && r.query.get('partNumber') === '1', fault: { kind: 'status', status: 503, code: 'SlowDown' } });
  p.chaos({ seed, rate: 0.05, faults: CHAOS });

  const r = await setup.runAsync(['load', setup.drive, '--json']);
  p.chaos(undefined);
  const counts = p.counts();
  const faulted = p.log.filter((l) => l.fault !== undefined);
  t.diagnostic(`${p.log.length} requests, ${faulted.length} faults: ${JSON.stringify(counts)}`);
  const kinds = new Set(faulted.map((l) => requestKind(l.method, l.query)));
  t.diagnostic(`request kinds faulted: ${[...kinds].join(', ')}`);
  assert.equal(r.code, 0, `the load completes: ${r.stderr.slice(-3000)}`);

  const audit = await auditLoad(setup);
  t.diagnostic(`audit: ${audit.files} files, ${audit.bytes} bytes, ${JSON.stringify(faults(audit))}`);
  assert.deepEqual(faults(audit), { lost: 0, corrupt: 0, strayObjects: 0, duplicatedRows: 0, missingRows: 0, wrongRows: 0, openUploads: 0 }, audit.problems.join('\n'));
  assert.ok(audit.files > 300, 'hundreds of files');

  // The faults did happen, of every kind, and on the request kinds that matter.
  for (const name of ['status InternalError', 'status SlowDown', 'reset', 'stall', 'truncate']) {
    assert.ok((counts[name] ?? 0) > 0, `at least one ${name} fault (seed ${seed})`);
  }
  for (const kind of ['PutObject', 'UploadPart', 'CreateMultipartUpload', 'CompleteMultipartUpload']) {
    assert.ok(kinds.has(kind), `a fault on ${kind}`);
  }
  // The lost CreateMultipartUpload answer left a second upload on its key, which the station aborted at the end.
  const creates = p.log.filter((l) => l.method === 'POST' && new URLSearchParams(l.query).has('uploads'));
  assert.ok(creates.length > 3, 'a CreateMultipartUpload was tried again after its answer was lost');
  assert.ok(p.log.some((l) => l.method === 'GET' && new URLSearchParams(l.query).has('uploads')), 'the station listed open uploads to find the orphan');
});

function requestKind(method: string, query: string): string {
  const q = new URLSearchParams(query);
  if (method === 'PUT') return q.has('partNumber') ? 'UploadPart' : 'PutObject';
  if (method === 'POST') return q.has('uploads') ? 'CreateMultipartUpload' : 'CompleteMultipartUpload';
  if (method === 'DELETE') return 'AbortMultipartUpload';
  if (method === 'GET') return q.has('uploads') ? 'ListMultipartUploads' : q.has('uploadId') ? 'ListParts' : 'GET';
  return method;
}
