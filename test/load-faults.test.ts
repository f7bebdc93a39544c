import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { MiB, bytes, logFromBucket, md5, objectsIn, openUploads, setupLoad, writeDrive } from './support/load.js';
import { errorName } from './support/station.js';

async function withProxy(t: { after: (fn: () => Promise<void>) => void }) {
  let proxy: FaultProxy | undefined;
  const endpoint = async (s3: { endpoint: string }) => {
    proxy = await startFaultProxy(s3.endpoint);
    t.after(() => proxy!.close());
    return proxy.endpoint;
  };
  return { endpoint, proxy: () => proxy! };
}

const isPut = (key: string) => (r: { method: string; path: string; query: URLSearchParams }) =>
  r.method === 'PUT' && r.path.endsWith(`/${key}`) && !r.query.has('partNumber');
const isPart = (key: string, n: number) => (r: { method: string; path: string; query: URLSearchParams }) =>
  r.method === 'PUT' && r.path.endsWith(`/${key}`) && r.query.get('partNumber') === String(n);

test('a 503 is retried; a file whose retries run out gets S3 status and code in its row and the job goes on', async (t) => {
  const p = await withProxy(t);
  const setup = await setupLoad(t, { endpoint: p.endpoint });
  writeDrive(setup.drive, { 'once.txt': 'retried once', 'always.txt': 'never stored', 'fine.txt': 'fine', 'refused.bin': bytes(12 * MiB, 7) });
  p.proxy().addRule({ match: isPut('once.txt'), fault: { kind: 'status', status: 503, code: 'SlowDown' } });
  p.proxy().addRule({ match: isPut('always.txt'), fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 100 });
  // A multipart file whose upload S3 will not create: its parts, read while the CreateMultipartUpload was on its
  // way, are never sent.
  const isCreate = (r: { method: string; path: string; query: URLSearchParams }) => r.method === 'POST' && r.path.endsWith('/refused.bin') && r.query.has('uploads');
  p.proxy().addRule({ match: isCreate, fault: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 100 });
  const r = await setup.runAsync(['load', setup.drive]);
  assert.equal(r.code, 3, r.stderr);
  const { rows } = await logFromBucket(setup);
  const row = (f: string) => rows.find((x) => x.File === f)!;
  assert.equal(`${row('once.txt').Status} ${row('once.txt').Code}`, '200 OK');
  assert.equal(`${row('always.txt').Status} ${row('always.txt').Code}`, '503 SlowDown');
  assert.equal(row('always.txt').Key, `${setup.bucket}/always.txt`);
  assert.equal(`${row('fine.txt').Status} ${row('fine.txt').Code}`, '200 OK');
  const attempts = (key: string) => p.proxy().log.filter((l) => l.method === 'PUT' && l.path.endsWith(`/${key}`)).length;
  assert.equal(attempts('once.txt'), 2, 'one 503, then stored');
  assert.equal(attempts('always.txt'), 3, 'maxAttempts: 3');
  assert.equal(`${row('refused.bin').Status} ${row('refused.bin').Code}`, '403 AccessDenied');
  const sent = p.proxy().log.filter((l) => l.path.endsWith('/refused.bin'));
  assert.deepEqual(sent.map((l) => `${l.method} ${l.query}`), ['POST uploads='], 'one CreateMultipartUpload (a 403 is not tried again), and no part');
  assert.equal(await openUploads(setup.s3, setup.bucket), 0);
  const objects = await objectsIn(setup.s3, setup.bucket);
  assert.deepEqual([...objects.keys()].sort(), ['fine.txt', 'once.txt']);
});

test('a BadDigest (a body corrupted on the way) is never resent blindly: the file or part is read again', async (t) => {
  const p = await withProxy(t);
  const setup = await setupLoad(t, { endpoint: p.endpoint });
  const big = bytes(11 * MiB, 3);
  writeDrive(setup.drive, { 'small.bin': bytes(5000, 1), 'big.bin': big });
  p.proxy().addRule({ match: isPut('small.bin'), fault: { kind: 'corrupt' } });
  p.proxy().addRule({ match: isPart('big.bin', 2), fault: { kind: 'corrupt' } });
  const r = await setup.runAsync(['load', setup.drive]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /BadDigest: reading the file again/);
  assert.match(r.stderr, /BadDigest: reading the part again/);
  const corrupted = p.proxy().log.filter((l) => l.fault === 'corrupt');
  assert.equal(corrupted.length, 2);
  assert.ok(corrupted.every((l) => l.status === 400), 'radosgw refused the corrupted bodies');
  const objects = await objectsIn(setup.s3, setup.bucket);
  assert.equal(md5(objects.get('big.bin')!), md5(big));
  const { rows } = await logFromBucket(setup);
  assert.equal(rows.find((x) => x.File === 'big.bin')!.MD5, md5(big));
});

test('CANCEL JOB during a load: in-flight work settles, nothing new starts, the log has the rows so far', async (t) => {
  const p = await withProxy(t);
  const setup = await setupLoad(t, { endpoint: p.endpoint, upload: '  maxRequests: 2\n' });
  const files: Record<string, Buffer> = { 'big.bin': bytes(16 * MiB, 9) };
  for (let i = 0; i < 40; i++) files[`f${String(i).padStart(2, '0')}.txt`] = bytes(100, i);
  writeDrive(setup.drive, files);
  p.proxy().addRule({ match: (req) => req.method === 'PUT', fault: { kind: 'delay', ms: 150 }, times: 1000 });
  const loading = setup.runAsync(['load', setup.drive]);
  for (let i = 0; i < 100 && (await objectsIn(setup.s3, setup.bucket)).size < 3; i++) await sleep(100);
  const cancel = setup.run(['job', 'cancel', setup.jobId]);
  assert.equal(cancel.code, 0, cancel.stderr);
  const r = await loading;
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stdout, /Canceled/);
  const st = JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout);
  assert.equal(st.jobStatus, 'Canceled');
  assert.equal(st.logKey, `import-log-${setup.jobId}`, 'the log was written');
  const { rows } = await logFromBucket(setup);
  const objects = await objectsIn(setup.s3, setup.bucket);
  const okRows = rows.filter((x) => x.Status === '200');
  assert.ok(okRows.length < Object.keys(files).length, `stopped early: ${okRows.length} stored`);
  assert.equal(objects.size, okRows.length, 'every stored object has its row, and no other object exists');
  for (const row of okRows) assert.equal(md5(objects.get(row.File)!), row.MD5);
  assert.equal(await openUploads(setup.s3, setup.bucket), 0, 'no multipart upload left open');
});

test('--verify re-reads the drive: a file changed after it was stored is 409 FileChanged', async (t) => {
  const p = await withProxy(t);
  const setup = await setupLoad(t, { endpoint: p.endpoint });
  writeDrive(setup.drive, { 'a.txt': 'original', 'z-last.txt': 'slow' });
  p.proxy().addRule({ match: isPut('z-last.txt'), fault: { kind: 'delay', ms: 2500 } });
  const loading = setup.runAsync(['load', setup.drive, '--verify']);
  for (let i = 0; i < 100 && !(await objectsIn(setup.s3, setup.bucket)).has('a.txt'); i++) await sleep(50);
  writeFileSync(join(setup.drive, 'a.txt'), 'ORIGINAL');
  const r = await loading;
  assert.equal(r.code, 3, r.stderr);
  const { rows } = await logFromBucket(setup);
  const a = rows.find((x) => x.File === 'a.txt')!;
  assert.equal(`${a.Status} ${a.Code}`, '409 FileChanged');
  assert.equal(rows.find((x) => x.File === 'z-last.txt')!.Status, '200');
  assert.equal(JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout).jobStatus, 'CompletedWithErrors');
});

test('S3 unreachable: the load stops, the job stays InProgress; run again and it resumes without a second row', async (t) => {
  const p = await withProxy(t);
  const setup = await setupLoad(t, { endpoint: p.endpoint });
  writeDrive(setup.drive, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
  p.proxy().addRule({ match: isPut('b.txt'), fault: { kind: 'drop' }, times: 3 });
  const first = await setup.runAsync(['load', setup.drive]);
  assert.equal(first.code, 4, first.stderr);
  assert.equal(errorName({ ...first, stderr: '' }), '');
  assert.match(first.stdout, /InProgress \(interrupted: S3 cannot be reached/);
  assert.equal(JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout).jobStatus, 'InProgress');
  const second = await setup.runAsync(['load', setup.drive]);
  assert.equal(second.code, 0, second.stderr);
  const { rows } = await logFromBucket(setup);
  assert.deepEqual(
    rows.map((x) => `${x.File} ${x.Status}`),
    ['SIGNATURE 103', 'a.txt 200', 'b.txt 200', 'c.txt 200'],
  );
  const putsOfA = p.proxy().log.filter((l) => l.method === 'PUT' && l.path.endsWith('/a.txt')).length;
  assert.equal(putsOfA, 1, 'a finished file is not uploaded again');
});

test('a drive pulled while it is walked: the entries the walk can no longer see get no row; plugged back, they load', async (t) => {
  const p = await withProxy(t);
  // One request at a time, so two files open at once: the walk waits at the third file while the first PUT is held.
  const setup = await setupLoad(t, { endpoint: p.endpoint, upload: '  maxRequests: 1\n' });
  const files: Record<string, string> = {};
  for (const name of 'abcdefgh') files[`${name}.txt`] = `file ${name}`;
  writeDrive(setup.drive, files);
  p.proxy().addRule({ match: isPut('a.txt'), fault: { kind: 'delay', ms: 1500 }, times: 1 });
  const running = setup.runAsync(['load', setup.drive]);
  await sleep(700);
  // Pulled: the walk has listed the folder and looked at a, b and c; it looks at d and the rest only now.
  const away = `${setup.drive}-in-hand`;
  renameSync(setup.drive, away);
  const first = await running;
  assert.equal(first.code, 4, first.stderr);
  assert.match(first.stdout, /InProgress \(interrupted: the drive was removed/);
  renameSync(away, setup.drive);
  const second = await setup.runAsync(['load', setup.drive]);
  assert.equal(second.code, 0, second.stderr + second.stdout);
  const { rows } = await logFromBucket(setup);
  assert.deepEqual(rows.map((x) => `${x.File} ${x.Status}`), ['SIGNATURE 103', ...Object.keys(files).map((f) => `${f} 200`)]);
  const objects = await objectsIn(setup.s3, setup.bucket);
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects.get(name)!), md5(content), name);
});
