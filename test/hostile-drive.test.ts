// The hostile-drive corpus (issue 5), loaded with the real `station load` against radosgw: every entry gets the
// row the contract gives it, every stored object holds the file's bytes under the file's own key, nothing else
// is stored, the drive is not written, and nothing outside it is read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildHostileDrive, snapshotTree, type Expectation } from '../fixtures/hostile/build.js';
import { corruptExtentBlock, makeExt4Image, writeFragmentedFile } from '../fixtures/hostile/unreadable.js';
import { mountImageReadOnly, sha256File, takeLoopDevices } from './support/images.js';
import { checkObjects, checkRows } from './support/hostile.js';
import { MiB, bytes, logFromBucket, setupLoad, setupLoadViaProxy, writeDrive } from './support/load.js';

/**
 * A file that was last accessed before it was last modified: on a `relatime` (or `strictatime`) mount the next
 * read moves its access time, so an access time still the same afterwards proves nobody read it.
 */
function markUnread(path: string): number {
  const st = statSync(path);
  const atime = new Date(st.mtimeMs - 86_400_000);
  utimesSync(path, atime, st.mtime);
  return statSync(path).atimeMs;
}

test('the hostile drive: every entry gets its documented row, the rest loads, the drive is not written, nothing outside is read', async (t) => {
  const setup = await setupLoad(t);
  // A file outside the drive, which a link points at: its bytes must never reach S3, nor be read at all.
  const outside = join(setup.dir, 'outside-secret.txt');
  writeFileSync(outside, 'SECRET OUTSIDE THE DRIVE\n');
  try {
    const expected = buildHostileDrive(setup.drive, { outsideFile: outside, multipartBytes: 6 * MiB });
    const sparse = join(setup.drive, 'big', 'sparse-6TiB');

    // The access-time probe works on this file system: a read does move an access time older than the mtime.
    const probe = join(setup.dir, 'probe.txt');
    writeFileSync(probe, 'probe');
    const probeBefore = markUnread(probe);
    readFileSync(probe);
    assert.notEqual(statSync(probe).atimeMs, probeBefore, 'a read moves the access time here (relatime)');
    const outsideAtime = markUnread(outside);
    const sparseAtime = markUnread(sparse);
    const before = snapshotTree(setup.drive);

    const r = setup.run(['load', setup.drive, '--json']);
    assert.equal(r.code, 3, `CompletedWithErrors exits 3: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.jobStatus, 'CompletedWithErrors');
    const errors = expected.filter((e) => e.status >= 400).length;
    assert.equal(out.errorCount, errors, 'every 4xx/5xx row counts as an error, and only those');

    const { rows } = await logFromBucket(setup);
    checkRows(rows, expected, setup.bucket);
    await checkObjects(setup, expected);

    assert.deepEqual(snapshotTree(setup.drive), before, 'the drive is not written: same entries, sizes, modes, times, contents');
    assert.equal(statSync(outside).atimeMs, outsideAtime, 'the file outside the drive was never read');
    assert.equal(statSync(sparse).atimeMs, sparseAtime, 'the 6 TiB file was never read');
    const secret = Buffer.from('SECRET OUTSIDE THE DRIVE');
    const passwd = readFileSync('/etc/passwd');
    for (const e of expected.filter((x) => x.content)) {
      assert.ok(!e.content!.includes(secret) && !(passwd.length > 0 && e.content!.equals(passwd)), `${e.what}: not the bytes of a file outside the drive`);
    }
    // NFC and NFD names are two files, two rows and two keys (docs/decisions.md): never normalised.
    const nfc = expected.find((e) => e.file === 'names/caf\u00e9.txt')!;
    const nfd = expected.find((e) => e.file === 'names/cafe\u0301.txt')!;
    assert.notEqual(nfc.key, nfd.key);
    assert.equal(nfc.key!.normalize('NFC'), nfd.key!.normalize('NFC'), 'the two names differ only in normalisation');
  } finally {
    // The tree past PATH_MAX: Node's rmSync names every path in full and fails there; rm walks with openat.
    execFileSync('rm', ['-rf', join(setup.drive, 'pathmax')]);
  }
});

test('the hostile drive on a read-only ext4 image: the same rows and objects, and the image is not written by one byte', async (t) => {
  if (!(await takeLoopDevices(t, 'needs root and a free loop device'))) return;
  const setup = await setupLoad(t);
  const outside = join(setup.dir, 'outside-secret.txt');
  writeFileSync(outside, 'SECRET OUTSIDE THE DRIVE\n');
  const mnt = join(setup.dir, 'mnt');
  const image = join(setup.dir, 'drive.img');
  let expected: Expectation[];
  try {
    expected = buildHostileDrive(setup.drive, { outsideFile: outside, multipartBytes: 6 * MiB, loadRoot: mnt });
    // mke2fs copies the tree as it is: names, links, FIFOs, sockets, devices, the sparse file (holes stay holes).
    makeExt4Image(image, setup.drive, 64);
  } finally {
    execFileSync('rm', ['-rf', join(setup.drive, 'pathmax')]);
  }
  const imageBefore = sha256File(image);
  const mounted = mountImageReadOnly(t, image, mnt);
  const outsideAtime = markUnread(outside);

  const r = setup.run(['load', mnt, '--json']);
  assert.equal(r.code, 3, `CompletedWithErrors exits 3: ${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).errorCount, expected.filter((e) => e.status >= 400).length);
  const { rows } = await logFromBucket(setup);
  checkRows(rows, expected, setup.bucket);
  await checkObjects(setup, expected);
  assert.equal(statSync(outside).atimeMs, outsideAtime, 'the file outside the drive was never read');
  mounted.unmount();
  assert.equal(sha256File(image), imageBefore, 'the image is byte for byte what it was');
});

test('files that grow, shrink or are rewritten while being read are 409 FileChanged, nothing of them is stored, the rest loads', async (t) => {
  const setup = await setupLoadViaProxy(t);
  const p = setup.proxy;
  // Above setupLoad's 5 MiB multipart threshold: three parts each.
  const changes: Record<string, (path: string) => void> = {
    'grows.bin': (path) => appendFileSync(path, 'more bytes at the end'),
    'shrinks.bin': (path) => truncateSync(path, 6 * MiB),
    'rewritten.bin': (path) => {
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.from('same size, other bytes'), 0, 22, 7 * MiB);
      closeSync(fd);
    },
  };
  const files: Record<string, Buffer> = { 'steady.bin': bytes(12 * MiB, 40), 'small.txt': bytes(100, 41) };
  for (const [i, name] of Object.keys(changes).entries()) files[name] = bytes(12 * MiB, 50 + i);
  writeDrive(setup.drive, files);
  // Each changing file's parts are held 2 s at the proxy: its upload has begun (the file is open, its size and
  // time taken) when its CreateMultipartUpload arrives, and cannot complete before the change is made.
  for (const name of Object.keys(changes)) {
    p.addRule({ match: (r) => r.method === 'PUT' && r.path.endsWith(`/${name}`) && r.query.has('partNumber'), fault: { kind: 'delay', ms: 2000 }, times: 10 });
  }
  const loading = setup.runAsync(['load', setup.drive]);
  const pending = new Set(Object.keys(changes));
  for (let i = 0; i < 1000 && pending.size > 0; i++) {
    for (const name of pending) {
      if (p.log.some((e) => e.method === 'POST' && e.path.endsWith(`/${name}`) && /(^|&)uploads(=|&|$)/.test(e.query))) {
        changes[name]!(join(setup.drive, name));
        pending.delete(name);
      }
    }
    await sleep(10);
  }
  assert.equal(pending.size, 0, 'every changing file began its upload');
  const r = await loading;
  assert.equal(r.code, 3, r.stderr);
  const { rows } = await logFromBucket(setup);
  const expected: Expectation[] = [
    { path: Buffer.from('steady.bin'), file: 'steady.bin', status: 200, code: 'OK', key: 'steady.bin', content: files['steady.bin']!, what: 'a file left alone' },
    { path: Buffer.from('small.txt'), file: 'small.txt', status: 200, code: 'OK', key: 'small.txt', content: files['small.txt']!, what: 'a small file' },
    ...Object.keys(changes).map((name) => ({ path: Buffer.from(name), file: name, status: 409, code: 'FileChanged', what: `${name} while it was read` })),
  ];
  checkRows(rows, expected, setup.bucket);
  await checkObjects(setup, expected);
});

test('a file the device cannot read is 500 DeviceReadError, whether it fails at once or after some parts; the rest loads and the image is not written', async (t) => {
  if (!(await takeLoopDevices(t, 'needs root and a free loop device (the unreadable file lives on a loop-mounted ext4 image)'))) return;
  // Through a proxy that only watches: to see the big file's multipart upload begin, then be aborted.
  const setup = await setupLoadViaProxy(t);
  const proxy = setup.proxy;
  const good = { 'a-good.txt': bytes(1000, 60), 'z-good.bin': bytes(6 * MiB, 61) };
  writeDrive(setup.drive, good);
  // Small (read in one synchronous call) and large (a multipart upload whose third part cannot be read).
  writeFragmentedFile(join(setup.drive, 'bad-small.bin'), 200 * 1024, 62);
  writeFragmentedFile(join(setup.drive, 'bad-big.bin'), 12 * MiB, 63);
  const image = join(setup.dir, 'drive.img');
  makeExt4Image(image, setup.drive, 64);
  corruptExtentBlock(image, '/bad-small.bin', 'first');
  corruptExtentBlock(image, '/bad-big.bin', 'last');
  const imageBefore = sha256File(image);

  const mnt = join(setup.dir, 'mnt');
  const mounted = mountImageReadOnly(t, image, mnt);
  // The damage is real: the big file's first bytes read, its end does not; the small one not at all.
  const fd = openSync(join(mnt, 'bad-big.bin'), 'r');
  try {
    assert.equal(readSync(fd, Buffer.alloc(4096), 0, 4096, 0), 4096);
    assert.throws(() => readSync(fd, Buffer.alloc(4096), 0, 4096, 12 * MiB - 4096), { code: 'EIO' });
  } finally {
    closeSync(fd);
  }

  const r = await setup.runAsync(['load', mnt]);
  assert.equal(r.code, 3, r.stderr);
  const { rows } = await logFromBucket(setup);
  const row = (file: string, status: number, code: string, what: string, data?: Buffer): Expectation => ({
    path: Buffer.from(file), file, status, code, what, ...(data && { key: file, content: data }),
  });
  const expected = [
    row('a-good.txt', 200, 'OK', 'a readable file before', good['a-good.txt']),
    row('bad-big.bin', 500, 'DeviceReadError', 'a multipart file whose end cannot be read'),
    row('bad-small.bin', 500, 'DeviceReadError', 'a small file that cannot be read at all'),
    row('z-good.bin', 200, 'OK', 'a readable multipart file after', good['z-good.bin']),
  ];
  checkRows(rows.filter((x) => !x.File.startsWith('lost+found')), expected, setup.bucket);
  const big = proxy!.log.filter((e) => e.path.endsWith('/bad-big.bin'));
  assert.ok(big.some((e) => e.method === 'PUT' && /partNumber=1(&|$)/.test(e.query) && e.status === 200), 'its first part was read and stored');
  assert.ok(big.some((e) => e.method === 'DELETE' && /uploadId=/.test(e.query)), 'then its upload was aborted');
  await checkObjects(setup, expected);
  mounted.unmount();
  assert.equal(sha256File(image), imageBefore, 'the image is byte for byte what it was: the drive was not written');
});

test('a file swapped for a symbolic link after the walk saw it is 104 NotRegularFile: the open does not follow it', async (t) => {
  const setup = await setupLoadViaProxy(t, {
    // One request slot: two files open at once, so two held PUTs stop the walk just after it looked at the third.
    upload: '  maxRequests: 1\n',
  });
  const p = setup.proxy;
  const outside = join(setup.dir, 'outside-secret.txt');
  writeFileSync(outside, 'SECRET OUTSIDE THE DRIVE\n');
  const files = { 'a1.txt': bytes(100, 70), 'a2.txt': bytes(100, 71), 'b-swapped.txt': bytes(100, 72), 'c.txt': bytes(100, 73) };
  writeDrive(setup.drive, files);
  const outsideAtime = markUnread(outside);
  // a1's PUT is held 4 s. Meanwhile a2 (read, waiting for the one request slot) holds the second file slot, so
  // the walk stops right after its lstat of b-swapped.txt, which still is a file. The swap comes 1 s into that
  // window: a margin for a busy machine; no open of b can happen before a1's PUT ends.
  p.addRule({ match: (r) => r.method === 'PUT' && r.path.endsWith('/a1.txt'), fault: { kind: 'delay', ms: 4000 } });
  const loading = setup.runAsync(['load', setup.drive]);
  for (let i = 0; i < 2000 && !p.log.some((e) => e.method === 'PUT' && e.path.endsWith('/a1.txt')); i++) await sleep(5);
  await sleep(1000);
  assert.ok(!p.log.some((e) => e.path.endsWith('/b-swapped.txt')), 'b-swapped.txt not sent yet');
  const swapped = join(setup.drive, 'b-swapped.txt');
  renameSync(swapped, join(setup.dir, 'b-moved-away.txt'));
  symlinkSync(outside, swapped);
  const r = await loading;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /"file":"b-swapped\.txt".*became a symbolic link/, 'the walk saw a file; the open found a link');
  const { rows } = await logFromBucket(setup);
  const row = (file: string, status: number, code: string, what: string, data?: Buffer): Expectation => ({
    path: Buffer.from(file), file, status, code, what, ...(data && { key: file, content: data }),
  });
  const expected = [
    row('a1.txt', 200, 'OK', 'a file', files['a1.txt']),
    row('a2.txt', 200, 'OK', 'a file', files['a2.txt']),
    row('b-swapped.txt', 104, 'NotRegularFile', 'a file replaced by a link to a file outside the drive'),
    row('c.txt', 200, 'OK', 'a file after it', files['c.txt']),
  ];
  checkRows(rows, expected, setup.bucket);
  await checkObjects(setup, expected);
  assert.equal(statSync(outside).atimeMs, outsideAtime, 'the file outside the drive was never read');
});
