import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { test } from 'node:test';
import { parse as parseCsv } from 'csv-parse/sync';
import { commandWordsAt } from '../src/cli/words.js';
import { csv, logDate } from '../src/importlog/format.js';
import { loadConfig } from '../src/config.js';
import { Budget } from '../src/load/budget.js';
import { BodyMemory } from '../src/load/buffers.js';
import { Md5, updateAll, updatePair } from '../src/load/md5-lanes.js';
import { MAX_PARTS, partSizeFor } from '../src/load/part-size.js';
import { Progress } from '../src/load/progress.js';
import { screenSnapshot } from '../src/screen/snapshot.js';
import type { DriveState } from '../src/daemon/drive-state.js';
import { seededRandom } from '../src/random.js';
import { DirectS3 } from '../src/s3/direct.js';
import { Http1 } from '../src/s3/http1.js';
import { environmentCredentials } from '../src/s3/credentials.js';
import { DirectObjects } from '../src/s3/direct-objects.js';
import { S3Refused, S3Unreachable } from '../src/s3/errors.js';
import { Signer, canonicalQuery } from '../src/s3/sigv4.js';
import { bytes } from './support/load.js';

const MiB = 1024 * 1024;

test('part size grows so no file needs more than 10,000 parts', () => {
  assert.equal(partSizeFor(100 * MiB, 16 * MiB), 16 * MiB);
  for (const size of [160_000 * MiB, 5 * 1024 ** 4, 1234567890123]) {
    const part = partSizeFor(size, 16 * MiB);
    assert.ok(Math.ceil(size / part) <= MAX_PARTS, `${size}: ${Math.ceil(size / part)} parts`);
    assert.equal(part % MiB, 0);
  }
  assert.ok(partSizeFor(5 * 1024 ** 4, 5 * MiB) <= 5 * 1024 ** 3, 'a part stays within S3s 5 GiB');
});

test("a command's words are found past the common options and their values", () => {
  const words = (argv: string[]) => commandWordsAt(argv).map((i) => argv[i]);
  assert.deepEqual(words(['load', '/mnt/d']), ['load', '/mnt/d']);
  assert.deepEqual(words(['--config', 'load', 'load', '/mnt/d']), ['load', '/mnt/d'], "a --config value named load is not the command");
  assert.deepEqual(words(['--json', '--data-dir', '/var/x', 'job', 'list', 'extra']), ['job', 'list']);
  assert.deepEqual(words(['--config=/etc/s.yaml', 'load']), ['load']);
  assert.deepEqual(words(['--help']), []);
});

test("the screen's drive card: an erase shows the bytes overwritten, with rate and ETA; a load its files too; a finished load no rate", () => {
  const drive = (stage: DriveState['stage'], progress: Progress): DriveState => ({
    drive: { id: 'd1', kind: 'partition', device: '/dev/sdz1' },
    stage,
    jobId: 'ABCDE',
    since: Date.now(),
    progress,
    controller: new AbortController(),
    lastProgressAt: Date.now(),
    lastDoneBytes: 0,
  });
  const erase = new Progress();
  erase.setTotals(0, 16 * MiB);
  erase.addBytes(8 * MiB);
  const load = new Progress();
  load.setTotals(3, 3 * MiB);
  load.addBytes(MiB);
  load.fileDone(200, 'OK');
  const [erasing, loading, done] = screenSnapshot([drive('erasing', erase), drive('loading', load), drive('done', load)], [], false).drives;
  assert.equal(erasing!.title, 'Erasing — do not unplug');
  const e = erasing!.progress!;
  assert.deepEqual([e.bytes, e.totalBytes, e.files, e.totalFiles], [8 * MiB, 16 * MiB, undefined, undefined]);
  assert.ok(e.bytesPerSecond! > 0 && e.etaSeconds !== undefined, JSON.stringify(e));
  assert.deepEqual([loading!.progress!.files, loading!.progress!.totalFiles], [1, 3]);
  assert.ok(loading!.progress!.bytesPerSecond! > 0);
  assert.equal(done!.progress!.bytesPerSecond, undefined, 'a finished load has no rate');
  assert.equal(done!.progress!.files, 1);
});

test('a budget holds back takers in order and lets one larger than the budget go alone', async () => {
  const budget = new Budget(100);
  const a = await budget.take(60);
  const order: string[] = [] as string[];
  const b = budget.take(50).then((l) => (order.push('b'), l));
  const c = budget.take(10).then((l) => (order.push('c'), l));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...order], [], 'b waits for room, and c waits behind b (no overtaking)');
  a.give();
  const [lb, lc] = await Promise.all([b, c]);
  assert.deepEqual([...order], ['b', 'c']);
  assert.equal(budget.inUse, 60);
  const huge = budget.take(500).then((l) => (order.push('huge'), l));
  await new Promise((r) => setImmediate(r));
  assert.equal(order.length, 2, 'a body over the whole budget waits until nothing is held');
  lb.give();
  lc.give();
  lc.give(); // a second give does nothing
  const lh = await huge;
  assert.equal(budget.inUse, 500);
  lh.give();
  assert.equal(budget.inUse, 0);
  assert.equal(budget.peak, 500);
});

test('body memory lends pieces of one shared block, in order, joins what comes back, keeps a share for small bodies, and lets an oversize body go alone', async () => {
  // 4 MiB: an eighth (512 KiB) for bodies up to 64 KiB, 3.5 MiB for the rest
  const memory = new BodyMemory(4 * MiB);
  const a = await memory.take(MiB + 1);
  assert.equal(a.buffer.length, MiB + 1);
  assert.ok(a.buffer.buffer instanceof SharedArrayBuffer, 'a worker thread can read it without a copy');
  const b = await memory.take(MiB);
  const c = await memory.take(MiB);
  // 1 MiB + 4 KiB (a's page-rounded size) + 2 MiB lent: a 1.5 MiB body waits, and so does a 100 KiB one behind it
  const order: string[] = [];
  const d = memory.take(1.5 * MiB).then((x) => (order.push('d'), x));
  const f = memory.take(100 * 1024).then((x) => (order.push('f'), x));
  // ... but not a small body (a small file): it has its own share
  const e = await memory.take(1000);
  assert.equal(e.buffer.length, 1000);
  const pieces = [a, b, c, e];
  assert.ok(pieces.every((x) => x.buffer.buffer === a.buffer.buffer), 'every body is a piece of the one block');
  const ranges = pieces.map((x) => [x.buffer.byteOffset, x.buffer.byteOffset + x.buffer.length] as const).sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]![0] >= ranges[i - 1]![1], 'pieces do not overlap');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'the big one waits for room, the 100 KiB one waits behind it');
  b.give();
  b.give(); // a second give does nothing
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'b alone leaves no 1.5 MiB in one piece (c sits between b and the free end)');
  c.give();
  const [ld, lf] = await Promise.all([d, f]);
  assert.deepEqual(order, ['d', 'f'], 'b, c and the free end joined: room for d, then f');
  assert.ok(memory.peak <= 4 * MiB, `peak ${memory.peak}`);
  for (const x of [a, ld, lf, e]) x.give();
  assert.equal(memory.inUse, 0);
  const whole = await memory.take(3.5 * MiB);
  assert.ok(whole.buffer.buffer === a.buffer.buffer, 'every piece came back and was joined: the whole share in one');
  const huge = memory.take(10 * MiB);
  let hugeGot = false;
  void huge.then(() => (hugeGot = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(hugeGot, false, 'a body over the budget waits until nothing is lent');
  whole.give();
  const lh = await huge;
  assert.equal(lh.buffer.length, 10 * MiB);
  lh.give();
  assert.equal(memory.inUse, 0);
});

test('log dates are as the original service wrote them; File and Key always quoted, RFC 4180 otherwise', () => {
  assert.equal(logDate(Date.UTC(2009, 1, 3, 21, 57, 43)), 'Tue 03 Feb 2009 21:57:43 GMT');
  const text = csv([{ at: 0, file: 'a "b",c', status: 200, code: 'OK', key: 'bk/a', md5: 'f00', bytes: 3, contentType: 'text/plain; charset=x' }]);
  assert.equal(text, 'Thu 01 Jan 1970 00:00:00 GMT,"a ""b"",c",200,OK,"bk/a",f00,3,text/plain; charset=x\r\n');
  assert.match(csv([{ at: 0, file: 'SIGNATURE', status: 103, code: 'Ignored', key: '', md5: '', bytes: 9, contentType: '' }]), /"SIGNATURE",103,Ignored,"",,9,\r\n$/);
});

test('the import log parses back to exactly its rows, whatever characters their fields hold', () => {
  const random = seededRandom(20261126);
  const alphabet = ['a', 'Z', ' ', '"', ',', '\r', '\n', '\r\n', '\t', ';', "'", 'é', '\u0000', '\\', '=', '\uFEFF', '😀'];
  const text = () => Array.from({ length: Math.floor(random() * 10) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  const rows = Array.from({ length: 2000 }, (_, i) => ({ at: i * 1000, file: text(), status: 200, code: text(), key: text(), md5: text(), bytes: i, contentType: text() }));
  const parsed = parseCsv(csv(rows, true), { relax_quotes: false }) as string[][];
  assert.deepEqual(parsed[0], ['DateTime', 'File', 'Status', 'Code', 'Key', 'MD5', 'Bytes', 'Content-Type']);
  assert.deepEqual(
    parsed.slice(1),
    rows.map((r) => [logDate(r.at), r.file, String(r.status), r.code, r.key, r.md5, String(r.bytes), r.contentType]),
  );
});

test('progress says files and bytes of the total, the rate and an ETA', () => {
  const p = new Progress();
  p.setTotals(10, 100 * MiB);
  p.fileDone(200, 'OK');
  p.fileDone(103, 'Ignored');
  p.addBytes(50 * MiB);
  assert.match(p.line(), /^2\/10 files {2}50\.0\/100\.0 MiB {2}[\d.]+ MiB\/s {2}ETA (\d+:\d\d|--:--)$/);
  assert.deepEqual(p.summary().slice(0, 3), ['files: 2', '  103 Ignored                1', '  200 OK                     1']);
});

/** The promise, or a failure of its own when it has not settled within 5 s (it would have waited forever). */
const soon = <T>(p: Promise<T>) => Promise.race([p, sleep(5000).then(() => Promise.reject(new Error('still waiting after 5 s')))]);

// Classes that start worker threads run from the build (dist/): a thread's file is the compiled .js beside them.
const built = async <T>(path: string): Promise<T> => (await import(new URL(`../dist/${path}`, import.meta.url).href)) as T;

test('MD5 lanes: the same bytes into several hashes give what Node gives, whatever the pieces and where each hash stands', () => {
  const nodeMd5 = (...pieces: Buffer[]) => pieces.reduce((h, p) => h.update(p), createHash('md5')).digest('hex');
  const random = seededRandom(20261126);
  const data = bytes(300_000, 5);
  for (let trial = 0; trial < 200; trial++) {
    // lengths around the padding's edges (55/56 bytes left in a block) and anywhere
    const length = trial < 130 ? trial : Math.floor(random() * data.length);
    const before = bytes(trial % 3 === 0 ? Math.floor(random() * 130) : 0, trial);
    const [a, b, c] = [new Md5(), new Md5(), new Md5().update(before)];
    for (let at = 0; at < length; ) {
      const n = Math.min(length - at, 1 + Math.floor(random() * 70_000));
      updateAll([a, b, c], data.subarray(at, at + n));
      at += n;
    }
    const want = nodeMd5(data.subarray(0, length));
    assert.equal(a.digest().toString('hex'), want, `length ${length}`);
    assert.equal(b.digest().toString('hex'), want, `length ${length}`);
    assert.equal(c.digest().toString('hex'), nodeMd5(before, data.subarray(0, length)), `length ${length} after ${before.length}`);
  }
  // Two streams at once, lanes 0-1 and 2-3: parts of two files, each into its own MD5 and its file's.
  for (let trial = 0; trial < 40; trial++) {
    const [lengthA, lengthB] = [Math.floor(random() * data.length), Math.floor(random() * data.length)];
    const [a, b] = [data.subarray(0, lengthA), bytes(lengthB, 1000 + trial)];
    const before = bytes(64 * (trial % 3), trial); // a file hash already at a block boundary, or (trial % 3 == 0) none
    const [ownA, fileA, ownB, fileB] = [new Md5(), new Md5().update(before), new Md5(), new Md5()];
    updatePair({ hashes: [ownA, fileA], data: a }, { hashes: [ownB, fileB], data: b });
    assert.equal(ownA.digest().toString('hex'), nodeMd5(a), `pair, a of ${lengthA}`);
    assert.equal(fileA.digest().toString('hex'), nodeMd5(before, a), `pair, a's file of ${before.length} + ${lengthA}`);
    assert.equal(ownB.digest().toString('hex'), nodeMd5(b), `pair, b of ${lengthB}`);
    assert.equal(fileB.digest().toString('hex'), nodeMd5(b), `pair, b's file of ${lengthB}`);
  }
  // A hash between block boundaries takes the pair one stream after the other, still right.
  const [odd, even] = [new Md5().update(bytes(7, 3)), new Md5()];
  updatePair({ hashes: [odd], data: data.subarray(0, 1000) }, { hashes: [even], data: data.subarray(0, 5000) });
  assert.equal(odd.digest().toString('hex'), nodeMd5(bytes(7, 3), data.subarray(0, 1000)));
  assert.equal(even.digest().toString('hex'), nodeMd5(data.subarray(0, 5000)));
  // Past 512 MiB the length in bits needs more than 32 bits: the padding's high word.
  const block = Buffer.alloc(64 * MiB, 0x5a);
  const [big, node] = [new Md5(), createHash('md5')];
  for (let i = 0; i < 9; i++) {
    big.update(block);
    node.update(block);
  }
  big.update(block.subarray(0, 7));
  assert.equal(big.digest().toString('hex'), node.update(block.subarray(0, 7)).digest('hex'), '576 MiB + 7 bytes');
});

test('two running hashes on the hash pool: the MD5 of each part and of each file are right, their parts paired in the lanes or not', async () => {
  const { Md5Pool } = await built<typeof import('../src/load/md5-pool.js')>('load/md5-pool.js');
  const pool = new Md5Pool(2);
  const shared = (b: Buffer) => {
    const s = Buffer.from(new SharedArrayBuffer(b.length));
    b.copy(s);
    return s;
  };
  const partsA = [bytes(MiB, 1), bytes(MiB, 2), bytes(300_001, 3)].map(shared);
  const partsB = [bytes(2 * MiB, 4), bytes(MiB + 64, 5)].map(shared);
  const [a, b] = [pool.running(), pool.running()];
  // Sent all at once, so the thread finds the other file's next part queued and pairs them.
  const asked = [...partsA.map((p) => a.next(p)), ...partsB.map((p) => b.next(p))];
  const md5s = await Promise.all(asked);
  [...partsA, ...partsB].forEach((p, i) => assert.equal(md5s[i]!.toString('hex'), createHash('md5').update(p).digest('hex'), `part ${i}`));
  assert.equal(await a.digest(), createHash('md5').update(Buffer.concat(partsA)).digest('hex'));
  assert.equal(await b.digest(), createHash('md5').update(Buffer.concat(partsB)).digest('hex'));
  a.close();
  b.close();
  await pool.close();
});

test('a hash thread that ends fails what was asked of it, and its running hashes, instead of leaving them waiting', async () => {
  const { Md5Pool } = await built<typeof import('../src/load/md5-pool.js')>('load/md5-pool.js');
  const pool = new Md5Pool(1);
  const body = Buffer.from(new SharedArrayBuffer(MiB)).fill(7);
  const running = pool.running();
  assert.equal((await running.next(body)).toString('hex'), createHash('md5').update(body).digest('hex'));
  assert.equal((await pool.digest(body)).toString('hex'), createHash('md5').update(body).digest('hex'));
  await pool.close();
  await assert.rejects(soon(running.next(body)), /MD5 worker ended/);
  await assert.rejects(soon(running.digest()), /MD5 worker ended/);
  // New work goes to a fresh thread.
  assert.equal((await pool.digest(body)).toString('hex'), createHash('md5').update(body).digest('hex'));
  await pool.close();
});

test('a spare thread is handed to the first taker; one that died before that is replaced, and a spare never holds the process', async () => {
  const { Worker } = await import('node:worker_threads');
  const { SpareThread } = await import('../src/spare-thread.js');
  const started: InstanceType<typeof Worker>[] = [];
  const spawn = (code: string) => () => {
    const w = new Worker(code, { eval: true });
    started.push(w);
    return w;
  };
  const alive = new SpareThread(spawn('setInterval(() => {}, 1000)'));
  alive.start();
  alive.start(); // a second start keeps the first spare
  assert.equal(started.length, 1);
  assert.equal(alive.take(), started[0], 'the taker gets the spare');
  assert.notEqual(alive.take(), started[0], 'the next taker gets a new thread');
  await Promise.all(started.splice(0).map((w) => w.terminate()));

  const dying = new SpareThread(spawn('process.exit(3)'));
  dying.start();
  const first = started[0]!;
  await new Promise((resolve) => first.once('exit', resolve));
  const taken = dying.take();
  assert.notEqual(taken, first, 'a spare that ended is not handed out');
  await new Promise((resolve) => taken.once('exit', resolve));

  // A command that starts a spare and never takes it still ends.
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `import { SpareThread } from ${JSON.stringify(new URL('../src/spare-thread.ts', import.meta.url).href)};
     import { Worker } from 'node:worker_threads';
     new SpareThread(() => new Worker('setInterval(() => {}, 1000)', { eval: true })).start();`], { timeout: 20_000 });
  assert.equal(child.status, 0, `the process ended on its own (signal ${child.signal})`);
});

test('a thread that keeps its heap near its live size collects it once it has grown 4 MiB, not when V8 gets to it', async () => {
  // In a thread of its own: the flag and the timer are per process and per thread.
  const { Worker } = await import('node:worker_threads');
  const code = `
    const { getHeapStatistics } = require('node:v8');
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../dist/heap.js', import.meta.url).href)}).then(({ keepHeapNearLive }) => {
      keepHeapNearLive();
      // tens of MiB of objects that live long enough to reach the old generation, then are dropped
      let kept = [];
      for (let i = 0; i < 120; i++) kept.push(Array.from({ length: 12000 }, (_, j) => ({ i, j })));
      kept = undefined;
      const grown = getHeapStatistics().total_heap_size;
      setTimeout(() => parentPort.postMessage({ grown, later: getHeapStatistics().total_heap_size }), 1500);
    });`;
  const worker = new Worker(code, { eval: true });
  const { grown, later } = await soon(new Promise<{ grown: number; later: number }>((resolve, reject) => worker.once('message', resolve).once('error', reject)));
  await worker.terminate();
  assert.ok(grown > 40 * MiB, `the heap grew (${grown} bytes)`);
  assert.ok(later < grown - 20 * MiB, `collected: ${grown} -> ${later} bytes`);
});

test('an S3 thread that was destroyed fails every request at once; one that died fails what it held, and the next request gets a new thread', async () => {
  const credentials = async () => ({ accessKeyId: 'AKIDTEST', secretAccessKey: 'not-used' });
  // Nothing listens on port 9: a PUT that reaches a live thread fails as S3 unreachable, not as a thread gone.
  const s3 = { ...loadConfig({ env: {} }).s3, endpoint: 'http://127.0.0.1:9', forcePathStyle: true };
  const { S3Thread } = await built<typeof import('../src/s3/s3-thread.js')>('s3/s3-thread.js');
  const md5 = createHash('md5').update('x').digest();
  const put = (t: InstanceType<typeof S3Thread>) =>
    soon(t.request({ method: 'PUT', bucket: 'bucket', key: 'key', body: Buffer.from(new SharedArrayBuffer(1)).fill(0x78), md5, what: 'PUT key' }));

  const destroyed = new S3Thread(credentials, { s3, maxAttempts: 1, maxSockets: 2 });
  await destroyed.destroy();
  await assert.rejects(put(destroyed), /S3 thread ended/);

  const dying = new S3Thread(credentials, { s3, maxAttempts: 1, maxSockets: 2 });
  const held = put(dying);
  // The thread ends as one past its heap limit would.
  await (dying as unknown as { worker: import('node:worker_threads').Worker }).worker.terminate();
  await assert.rejects(held, /S3 thread ended/);
  await assert.rejects(put(dying), (err: Error) => err.name === 'S3Unreachable' && /^PUT key: .*ECONNREFUSED/.test(err.message));
  await dying.destroy();
});

test("the signer signs as the SDK's SignatureV4 does: random methods, headers, keys, queries (UploadPart's, listings'), payloads, dates and credentials", async () => {
  const random = seededRandom(20261126);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
  const text = (chars: string, max: number) => Array.from({ length: 1 + Math.floor(random() * max) }, () => pick([...chars])).join('');
  const printable = 'abcXYZ019 -_.~/%=;,:"\'\t';
  for (let i = 0; i < 300; i++) {
    const credentials = { accessKeyId: text('ABCDEFGHIJ0123456789', 20), secretAccessKey: text('abcdefABCDEF0123456789/+', 40), ...(random() < 0.3 && { sessionToken: text('abc0123/+=', 60) }) };
    const region = pick(['us-east-1', 'eu-west-3', 'default']);
    const now = Date.UTC(2020, 0, 1) + Math.floor(random() * 2e11);
    const path = `/${pick(['bucket/', ''])}${text('abc%20XYZ-_.~/()', 40)}`;
    const params = pick<Record<string, string>>([
      {},
      { partNumber: String(1 + Math.floor(random() * 10_000)), uploadId: text('abcXYZ019-_.~+/=:', 60) },
      { uploads: '' },
      { uploads: '', prefix: text(printable, 20), 'key-marker': text(printable, 20), 'upload-id-marker': text('abc019', 10) },
    ]);
    const method = pick(['PUT', 'POST', 'GET', 'HEAD', 'DELETE']);
    const headers: Record<string, string> = {
      host: pick(['127.0.0.1:7480', 'bucket.s3.us-east-1.amazonaws.com']),
      'content-length': String(Math.floor(random() * 1e9)),
      'content-md5': text('abcdefABCDEF0123456789/+', 22) + '==',
      'x-amz-content-sha256': pick(['UNSIGNED-PAYLOAD', createHash('sha256').update(text(printable, 100)).digest('hex')]),
      'content-type': pick(['text/plain', 'application/octet-stream', '  image/jpeg  ']),
    };
    for (const name of ['cache-control', 'content-encoding', 'content-disposition', 'x-amz-acl', 'expires', 'x-amz-meta-origin', 'x-amz-meta-disk-mtime', 'x-amz-storage-class', 'user-agent', 'expect']) {
      if (random() < 0.4) headers[name] = text(printable, 30);
    }
    const ours = { ...headers };
    new Signer(region).sign(method, path, canonicalQuery(params), ours, credentials, now);
    const sdk = new SignatureV4({ credentials, region, service: 's3', sha256: Sha256, uriEscapePath: false, applyChecksum: false });
    const theirs = await sdk.sign({ method, protocol: 'http:', hostname: 'h', path, headers: { ...headers }, query: params }, { signingDate: new Date(now) });
    assert.equal(ours.authorization, theirs.headers.authorization, JSON.stringify({ path, headers }));
    assert.equal(ours['x-amz-date'], theirs.headers['x-amz-date']);
    assert.equal(ours['x-amz-security-token'], theirs.headers['x-amz-security-token']);
  }
  // A signer keeps its key for the day: the next day's request is signed with the next day's key.
  const signer = new Signer('us-east-1');
  const credentials = { accessKeyId: 'AKID', secretAccessKey: 'secret' };
  const signs = [0, 86_400_000].map((dt) => {
    const headers: Record<string, string> = { host: 'h', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    signer.sign('PUT', '/b/k', '', headers, credentials, Date.UTC(2026, 10, 26, 23, 59, 59) + dt);
    return headers.authorization!;
  });
  assert.match(signs[0]!, /Credential=AKID\/20261126\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
  assert.match(signs[1]!, /\/20261127\//);
});

const asBytes = (x: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof x === 'string' ? x : x instanceof ArrayBuffer ? new Uint8Array(x) : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** The hash SignatureV4 asks for, on Node's crypto. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', asBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(asBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

test('HTTP/1.1 answers framed every way S3 and proxies send them, split anywhere, are read whole; connections are kept, capped and dropped as they should be', async (t) => {
  // Each request's path names how the scripted server answers it; every answer goes out in small pieces.
  const CHUNKED = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n<List\r\nb\r\n>a</List>\r\n\r\n0\r\n\r\n';
  const ANSWERS: Record<string, string> = {
    '/length': 'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 11\r\n\r\nhello world',
    '/chunked': CHUNKED,
    '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
    '/head': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n',
    '/close': 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye',
    '/until-end': 'HTTP/1.1 500 Internal Server Error\r\n\r\n<Error><Code>InternalError</Code></Error>',
    '/slow': 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow',
    '/end-quietly': 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
    '/early': 'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n',
  };
  let connections = 0;
  let slowAtOnce = 0;
  let mostSlowAtOnce = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    let pending = '';
    let closing = false;
    socket.on('data', async (d) => {
      if (closing) return; // a server closing an idle connection does not answer what comes meanwhile
      pending += d.toString('latin1');
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = pending.split(' ')[1]!;
      pending = '';
      const answer = ANSWERS[path]!;
      // closes the connection a little after this answer, without saying so
      if (path === '/end-quietly') closing = true;
      // refuses a body before it came, and reads no more of it
      if (path === '/early') socket.pause();
      if (path === '/slow') {
        mostSlowAtOnce = Math.max(mostSlowAtOnce, ++slowAtOnce);
        await sleep(150);
        slowAtOnce--;
      }
      for (let at = 0; at < answer.length; at += 7) {
        socket.write(answer.slice(at, at + 7), 'latin1');
        await sleep(1);
      }
      if (path === '/close' || path === '/until-end') socket.end();
      if (path === '/end-quietly') setTimeout(() => socket.destroy(), 40);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const origin = { tls: false, host: '127.0.0.1', port, authority: `127.0.0.1:${port}` };
  const http = new Http1(2000, 2);
  t.after(() => http.destroy());
  const get = (path: string, method = 'GET') => http.request(origin, method, path, {}, undefined);

  const length = await get('/length');
  assert.deepEqual([length.status, length.headers.get('etag'), length.body.toString()], [200, '"abc"', 'hello world']);
  assert.equal((await get('/chunked')).body.toString(), '<List>a</List>\r\n', 'the chunks joined');
  assert.equal((await get('/continue')).body.toString(), 'ok', 'the interim 100 skipped');
  const head = await get('/head', 'HEAD');
  assert.deepEqual([head.status, head.headers.get('content-length'), head.body.length], [200, '5', 0], "a HEAD's length, and no body waited for");
  assert.equal(connections, 1, 'one keep-alive connection for all of them');
  assert.equal((await get('/close')).body.toString(), 'bye');
  assert.equal((await get('/length')).status, 200);
  assert.equal(connections, 2, 'a connection the server closes is not used again');
  const untilEnd = await get('/until-end');
  assert.deepEqual([untilEnd.status, untilEnd.body.toString()], [500, '<Error><Code>InternalError</Code></Error>'], 'an answer that ends with its connection');
  // A kept connection the server closes just as the next request goes out fails that request (DirectS3 decides
  // whether to try again); the next goes on a new connection.
  assert.equal((await get('/end-quietly')).body.toString(), 'ok');
  await assert.rejects(get('/length'), /closed before the whole answer came|ECONNRESET/);
  const was = connections;
  assert.equal((await get('/length')).body.toString(), 'hello world');
  assert.equal(connections, was + 1, 'a new connection after the closed one');
  // Refused before the whole body went out: the rest of the body must not follow on the next request's connection.
  const refused = await http.request(origin, 'PUT', '/early', { 'content-length': String(64 * MiB) }, Buffer.alloc(64 * MiB));
  assert.equal(refused.status, 403);
  const fresh = connections;
  assert.equal((await get('/length')).body.toString(), 'hello world');
  assert.equal(connections, fresh + 1, "not on the refused request's connection");
  await assert.rejects(http.request(origin, 'PUT', '/length', { 'x-amz-meta-a': 'b\r\nx-amz-acl: public-read' }, undefined), /line break/);
  await assert.rejects(get('/length\r\nGET /chunked'), /line break/);
  const before = connections;
  const three = await Promise.all([get('/slow'), get('/slow'), get('/slow')]);
  assert.deepEqual(three.map((a) => a.body.toString()), ['slow', 'slow', 'slow']);
  assert.equal(mostSlowAtOnce, 2, 'two at once, on the two connections allowed');
  assert.ok(connections - before <= 2, 'the third request waited for a connection of the two');
});

test('a direct PUT to a server that goes silent (never answers, or stops reading the body) fails as unreachable after its tries; a slow one that keeps reading is waited for; an S3 error keeps its status and code', async (t) => {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', (d) => {
      const head = d.toString('latin1');
      seen.push(head.slice(0, head.indexOf(' /')));
      if (head.includes('/b/refused')) {
        const xml = '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>';
        socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: ${xml.length}\r\n\r\n${xml}`);
      } else if (head.includes('/b/stalled')) {
        socket.pause(); // reads no more: the body's write backs up
      } else if (head.includes('/b/slow')) {
        // Takes the body slowly but steadily (~20 MiB/s), for longer than the timeout, then answers.
        let got = d.length - head.indexOf('\r\n\r\n') - 4;
        let tick = 0;
        const size = Number(/content-length: (\d+)/i.exec(head)![1]);
        socket.pause();
        const timer = setInterval(() => ((tick = 0), socket.resume()), 10);
        socket.on('close', () => clearInterval(timer));
        socket.on('data', (more) => {
          got += more.length;
          tick += more.length;
          if (tick >= 200 * 1024) socket.pause();
          // (a client may send its next request on this connection before it sees the end of it)
          if (got < size || socket.writableEnded) return;
          clearInterval(timer);
          socket.end('HTTP/1.1 200 OK\r\netag: "0123456789abcdef0123456789abcdef"\r\ncontent-length: 0\r\n\r\n');
        });
      }
      // anything else: read on, answer never
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const s3 = { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: 300 } as never;
  const direct = new DirectS3(async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }), s3, 2, 4);
  t.after(() => direct.destroy());
  const put = new DirectObjects((req) => direct.request(req), async () => direct.destroy());
  const md5 = createHash('md5').digest();
  for (const [key, body] of [['silent', Buffer.alloc(10)], ['stalled', Buffer.alloc(64 * MiB)]] as const) {
    const started = performance.now();
    const err = await put.put('b', key, body, md5, { ContentType: 'application/octet-stream' }).then(() => undefined, (e: unknown) => e);
    const took = performance.now() - started;
    assert.ok(err instanceof S3Unreachable, `${key}: ${String(err)}`);
    assert.match((err as Error).message, new RegExp(`^PUT ${key}: `));
    assert.ok(took >= 600 && took < 10_000, `${key}: two tries of 300 ms, took ${Math.round(took)} ms`);
  }
  const started = performance.now();
  assert.equal(await put.put('b', 'slow', Buffer.alloc(64 * MiB), md5, { ContentType: 'application/octet-stream' }), '0123456789abcdef0123456789abcdef');
  const took = performance.now() - started;
  assert.ok(took > 2000, `a body that keeps moving is not cut off by the timeout (took ${Math.round(took)} ms)`);
  const refused = await put.put('b', 'refused', Buffer.alloc(10), md5, { ContentType: 'application/octet-stream' }).then(() => undefined, (e: unknown) => e);
  assert.ok(refused instanceof S3Refused, String(refused));
  assert.equal((refused as S3Refused).status, 403);
  assert.equal((refused as S3Refused).code, 'AccessDenied');
  assert.deepEqual(seen, ['PUT', 'PUT', 'PUT', 'PUT', 'PUT', 'PUT'], 'two tries for each silent server, one for the slow one, one for the refusal (not retried)');
});

test("direct requests read S3's XML: a Complete that fails inside its 200 is tried again, listings page on and unescape keys, a HEAD's 404 is NotFound", async (t) => {
  const seen: string[] = [];
  let completes = 0;
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const xml = (body: string, status = 200) => res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    const url = new URL(req.url!, 'http://h');
    if (req.method === 'POST' && url.searchParams.has('uploads')) return xml('<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u&amp;1</UploadId></InitiateMultipartUploadResult>');
    if (req.method === 'POST') {
      completes++;
      // AWS: the 200 goes out at once, the outcome follows in the body.
      if (completes === 1) return xml('<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>');
      return xml('<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>&quot;3858F62230AC3C915F300C664312C11F-2&quot;</ETag></CompleteMultipartUploadResult>');
    }
    if (req.method === 'HEAD') return res.writeHead(404).end();
    if (url.searchParams.has('key-marker')) {
      return xml('<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>c/d</Key><UploadId>u3</UploadId><Initiated>2026-11-26T08:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>');
    }
    return xml(
      '<ListMultipartUploadsResult><KeyMarker></KeyMarker><NextKeyMarker>a&amp;b&lt;c</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker><IsTruncated>true</IsTruncated>' +
        '<Upload><Key>a&amp;b&lt;c</Key><UploadId>u2</UploadId><Owner><ID>x</ID></Owner><Initiated>2026-11-25T08:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const { port } = server.address() as { port: number };
  const s3 = { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, requestTimeoutMs: 5000 } as never;
  const direct = new DirectS3(async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }), s3, 3, 4);
  t.after(() => direct.destroy());
  const objects = new DirectObjects((req) => direct.request(req), async () => direct.destroy());

  assert.equal(await objects.create('b', 'k', { ContentType: 'text/plain' }), 'u&1');
  const etag = await objects.complete('b', 'k', 'u&1', [{ partNumber: 1, etag: 'aa' }, { partNumber: 2, etag: 'bb' }]);
  assert.equal(etag, '3858f62230ac3c915f300c664312c11f-2');
  assert.equal(completes, 2, 'the error inside the 200 was tried again');
  const first = await objects.listUploads('b', 'p/');
  assert.deepEqual(first, { uploads: [{ key: 'a&b<c', uploadId: 'u2', initiated: new Date('2026-11-25T08:00:00.000Z') }], next: { key: 'a&b<c', uploadId: 'u2' } });
  const second = await objects.listUploads('b', 'p/', first.next);
  assert.deepEqual(second, { uploads: [{ key: 'c/d', uploadId: 'u3', initiated: new Date('2026-11-26T08:00:00.000Z') }] });
  const missing = await objects.head('b', 'gone').then(() => undefined, (e: unknown) => e);
  assert.ok(missing instanceof S3Refused && missing.status === 404 && missing.code === 'NotFound', String(missing));
  assert.deepEqual(seen, [
    'POST /b/k?uploads=',
    'POST /b/k?uploadId=u%261',
    'POST /b/k?uploadId=u%261',
    'GET /b/?prefix=p%2F&uploads=',
    'GET /b/?key-marker=a%26b%3Cc&prefix=p%2F&upload-id-marker=u2&uploads=',
    'HEAD /b/gone',
  ]);
});

test('credentials: keys in the environment are used as the SDK chain would, and not when AWS_PROFILE names a profile', () => {
  const keys = { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' };
  assert.deepEqual(environmentCredentials(keys), { accessKeyId: 'AKID', secretAccessKey: 'secret' });
  assert.deepEqual(environmentCredentials({ ...keys, AWS_SESSION_TOKEN: 'tok' }), { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'tok' });
  assert.equal(environmentCredentials({ ...keys, AWS_PROFILE: 'station' }), undefined);
  assert.equal(environmentCredentials({ AWS_ACCESS_KEY_ID: 'AKID' }), undefined);
});

test("the built-in content types are mime-types' own: every extension mime-db knows, in any case", async () => {
  const { builtInType } = await built<typeof import('../src/load/content-type.js')>('load/content-type.js');
  const { lookup } = createRequire(import.meta.url)('mime-types') as typeof import('mime-types');
  const db = createRequire(import.meta.url)('mime-db') as Record<string, { extensions?: string[] }>;
  const extensions = [...new Set(Object.values(db).flatMap((t) => t.extensions ?? []))];
  assert.ok(extensions.length > 1000, `${extensions.length} extensions`);
  for (const ext of [...extensions, ...extensions.map((e) => e.toUpperCase()), 'no-such-extension']) {
    assert.equal(builtInType(ext), lookup(ext) || undefined, ext);
  }
  assert.equal(builtInType('JPG'), 'image/jpeg');
});
