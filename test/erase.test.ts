// Erasing drives (the manifest's `eraseDevice`), on real ext4 images attached as loop devices (root only:
// elsewhere every case is skipped, saying why). Only loop devices this file attached are ever erased; each image's
// backing file is what is checked: all zeros when erased, its SHA-256 unchanged when not.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { eraseDevice, eraseTargetOf, NotErased, sampleSpans } from '../src/drives/erase.js';
import { type DaemonProcess, stageIs, startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import { LOOPS_WHY_NOT, attachLoop, detachLoop, holdLoopDevices, makeImage, sha256File } from './support/images.js';
import { bytes, md5, objectsIn, setupLoad, type LoadSetup } from './support/load.js';

const loops = holdLoopDevices();
const WHY_NOT = LOOPS_WHY_NOT;

const MiB = 1 << 20;
const FILES = { 'photos/one.jpg': bytes(70_000, 1), 'big.bin': bytes(9 * MiB, 2) };

/** The offset of the first non-zero byte of the file, or -1 when it is all zeros. */
function firstNonZero(path: string): number {
  const buf = Buffer.alloc(MiB);
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0, n; (n = readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) {
      const i = buf.subarray(0, n).findIndex((b) => b !== 0);
      if (i >= 0) return pos + i;
    }
    return -1;
  } finally {
    closeSync(fd);
  }
}

/** Attaches `image`; detached after the test, pass or fail. */
function attach(t: TestContext, image: string, options: { partitions?: boolean } = {}): string {
  const dev = options.partitions
    ? execFileSync('losetup', ['-f', '--show', '-P', image], { encoding: 'utf8' }).trim()
    : attachLoop(image);
  if (options.partitions) execFileSync('blockdev', ['--setrw', dev]);
  t.after(() => detachLoop(dev));
  return dev;
}

test('the spans read back: first and last MiB, random ones by seed, sorted, apart; a small device whole', () => {
  const size = 10 * 2 ** 30 + 12345;
  const spans = sampleSpans(size, 'JOB42');
  assert.equal(spans.length, 64);
  assert.deepEqual(spans[0], [0, MiB]);
  const last = spans[spans.length - 1]!;
  assert.equal(last[0] + last[1], size, 'the last span reaches the end');
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![0] + spans[i - 1]![1], `span ${i} after span ${i - 1}`);
  assert.deepEqual(sampleSpans(size, 'JOB42'), spans, 'the same seed, the same spans');
  assert.notDeepEqual(sampleSpans(size, 'JOB43'), spans, 'another seed, other spans');
  assert.deepEqual(sampleSpans(16 * MiB, 'x'), [[0, 16 * MiB]]);
});

test('a loop device is overwritten with zeros and read back whole; the test image file is all zeros', { skip: !loops && WHY_NOT }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'erase-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const image = makeImage(dir, 'ext4', FILES);
  assert.notEqual(firstNonZero(image), -1);
  const dev = attach(t, image);
  execFileSync('blockdev', ['--setro', dev]); // as the daemon leaves it after its mount: the erase clears it
  const target = await eraseTargetOf(dev, '/nowhere');
  assert.equal(target.device, dev);
  assert.equal(target.size, 16 * MiB);
  let told = 0;
  const done = await eraseDevice(target, { seed: 'T', onBytes: (n) => (told += n) });
  assert.deepEqual(done, { device: dev, size: 16 * MiB, sampled: 16 * MiB });
  assert.equal(told, 16 * MiB, 'progress reported every byte');
  assert.equal(firstNonZero(image), -1, 'the image is all zeros');
});

test('a mounted loop device is refused by the checks and by the exclusive open; nothing is written', { skip: !loops && WHY_NOT }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'erase-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const image = makeImage(dir, 'ext4', FILES);
  const before = sha256File(image);
  const dev = attach(t, image);
  const target = await eraseTargetOf(dev, '/nowhere');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  execFileSync('blockdev', ['--setro', dev]);
  execFileSync('mount', ['-o', 'ro', dev, mnt]);
  try {
    await assert.rejects(eraseTargetOf(dev, '/somewhere-else'), (e: unknown) => e instanceof NotErased && /is mounted at .*\/mnt, not by the station/.test(e.reason));
    // The checks passed before the mount: the erase looks again, and leaves the read-only flag alone.
    await assert.rejects(eraseDevice(target, { seed: 'T' }), (e: unknown) => e instanceof NotErased && e.written === 0 && /is mounted/.test(e.reason));
    assert.equal(execFileSync('blockdev', ['--getro', dev], { encoding: 'utf8' }).trim(), '1');
  } finally {
    execFileSync('umount', [mnt]);
  }
  // Held by another program's exclusive open (as a mount or a RAID would): the kernel refuses the erase's own.
  const holder = await open(dev, constants.O_RDONLY | constants.O_EXCL);
  try {
    await assert.rejects(eraseDevice(target, { seed: 'T' }), (e: unknown) => e instanceof NotErased && e.written === 0 && /in use/.test(e.reason));
  } finally {
    await holder.close();
  }
  assert.equal(execFileSync('blockdev', ['--getro', dev], { encoding: 'utf8' }).trim(), '1', 'the read-only flag restored');
  assert.equal(sha256File(image), before, 'the image is unchanged');
});

test('an erase stopped midway says how much was written and never claims the device erased', { skip: !loops && WHY_NOT }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'erase-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const image = makeImage(dir, 'ext4', FILES);
  const dev = attach(t, image);
  const controller = new AbortController();
  const target = await eraseTargetOf(dev, '/nowhere');
  const err = await eraseDevice(target, { seed: 'T', signal: controller.signal, onBytes: () => controller.abort('the station is shutting down') }).then(
    () => assert.fail('claimed erased'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NotErased);
  assert.match(err.reason, /^erase interrupted: the station is shutting down$/);
  assert.equal(err.written, 8 * MiB, 'one chunk written');
  assert.ok(firstNonZero(image) >= 8 * MiB, 'the first 8 MiB are zeros, and something after them is not');
});

test('a partition that is its disk\'s only one means the whole disk; beside another, only itself', { skip: !loops && WHY_NOT }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'erase-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mbr = (parts: Array<[number, number]>) => {
    const image = join(dir, `disk-${parts.length}.img`);
    writeFileSync(image, '');
    truncateSync(image, 16 * MiB);
    const sector = Buffer.alloc(512);
    parts.forEach(([start, count], i) => {
      const e = 446 + 16 * i;
      sector[e + 4] = 0x83; // Linux
      sector.writeUInt32LE(start, e + 8);
      sector.writeUInt32LE(count, e + 12);
    });
    sector.writeUInt16LE(0xaa55, 510);
    const fd = openSync(image, 'r+');
    writeSync(fd, sector, 0, 512, 0);
    closeSync(fd);
    return image;
  };
  const one = attach(t, mbr([[2048, 8192]]), { partitions: true });
  if (!existsSync(`${one}p1`)) {
    t.skip(`the kernel made no ${one}p1 for a partitioned loop device here`);
    return;
  }
  const whole = await eraseTargetOf(`${one}p1`, '/nowhere');
  assert.equal(whole.device, one, 'the whole disk, partition table included');
  assert.equal(whole.size, 16 * MiB);
  const two = attach(t, mbr([[2048, 8192], [10240, 8192]]), { partitions: true });
  const part = await eraseTargetOf(`${two}p1`, '/nowhere');
  assert.equal(part.device, `${two}p1`, 'the partition alone: the other may be another job');
  assert.equal(part.size, 4 * MiB);
  assert.ok(statSync(`${two}p2`).isBlockDevice());
});

/**
 * A station and an auto-mounting daemon watching an empty mount root; the job's manifest gets `manifest`. `image`
 * is the job's drive as an ext4 image (FILES and the job's SIGNATURE), not yet attached.
 */
async function stationWithDaemon(t: TestContext, manifest: string): Promise<{ setup: LoadSetup; d: DaemonProcess; media: string; image: string }> {
  const setup = await setupLoad(t, { manifest, config: watchMedia(true) });
  const media = useMediaRoot(setup);
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  const image = makeImage(setup.dir, 'ext4', { ...FILES, SIGNATURE: readFileSync(join(setup.drive, 'SIGNATURE')) });
  return { setup, d, media, image };
}

const statusOf = async (setup: LoadSetup) => JSON.parse((await setup.runAsync(['status', '--json'])).stdout);
const notesOf = async (setup: LoadSetup): Promise<string[]> =>
  (JSON.parse((await setup.runAsync(['job', 'status', setup.jobId, '--json'])).stdout).notes ?? []).map((n: { text: string }) => n.text);

test('eraseDevice: yes on a drive the daemon mounted: loaded, then erased; the card and the job say so', { skip: !loops && WHY_NOT }, async (t) => {
  const { setup, d, image } = await stationWithDaemon(t, 'eraseDevice: yes\n');
  const dev = attach(t, image);
  await d.waitFor(stageIs(setup.jobId, 'erased'), 'erased', 120_000);

  const objects = await objectsIn(setup.s3, setup.bucket);
  for (const [name, content] of Object.entries(FILES)) assert.equal(md5(objects.get(name) ?? ''), md5(content), `${name} is in S3 before the erase`);
  assert.ok(d.events.some((e) => e.jobId === setup.jobId && e.stage === 'erasing'), 'went through erasing');
  const stages = d.events.filter((e) => e.jobId === setup.jobId && e.stage).map((e) => e.stage);
  assert.ok(!stages.includes('done'), `never said "done" (safe to unplug) before the erase: ${stages.join(', ')}`);

  const card = (await statusOf(setup)).drives.find((x: { drive: string }) => x.drive === dev);
  assert.equal(card?.stage, 'erased');
  assert.equal(card?.safeToUnplug, true);
  assert.match(card?.detail ?? '', /erased, safe to unplug/);
  const plain = (await setup.runAsync(['status'])).stdout;
  assert.match(plain, new RegExp(`${dev}\\s+${setup.jobId}\\s+erased`));

  const notes = await notesOf(setup);
  assert.ok(notes.includes(`eraseDevice: erasing ${dev} (16.0 MiB)`), notes.join('\n'));
  assert.ok(notes.includes(`eraseDevice: ${dev} (16.0 MiB) overwritten with zeros; all 16.0 MiB read back as zeros`), notes.join('\n'));
  const job = JSON.parse((await setup.runAsync(['job', 'status', setup.jobId, '--json'])).stdout);
  assert.equal(job.jobStatus, 'Completed');

  assert.equal(await d.kill('SIGTERM'), 0);
  assert.equal(firstNonZero(image), -1, "the drive's image is all zeros");
});

test('eraseDevice: no: loaded and never erased, the image byte for byte what it was', { skip: !loops && WHY_NOT }, async (t) => {
  const { setup, d, image } = await stationWithDaemon(t, 'eraseDevice: no\n');
  const before = sha256File(image);
  attach(t, image);
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done', 120_000);
  assert.ok(!d.events.some((e) => e.stage === 'erasing'));
  assert.deepEqual((await notesOf(setup)).filter((n) => n.startsWith('eraseDevice')), []);
  assert.equal(await d.kill('SIGTERM'), 0);
  assert.equal(sha256File(image), before);
});

test('eraseDevice: yes on a device mounted by someone else: loaded, not erased, the reason on the job', { skip: !loops && WHY_NOT }, async (t) => {
  const { setup, d, media, image } = await stationWithDaemon(t, 'eraseDevice: yes\n');
  const before = sha256File(image);
  // Mounted by "someone else" (this test) under the mount root before the daemon looks: read-only for real.
  const mnt = join(media, 'usb');
  mkdirSync(mnt);
  const dev = attach(t, image);
  execFileSync('blockdev', ['--setro', dev]);
  execFileSync('mount', ['-o', 'ro,noload', dev, mnt]);
  try {
    await d.waitFor(stageIs(setup.jobId, 'erase-failed'), 'erase-failed', 120_000);
    const card = (await statusOf(setup)).drives.find((x: { jobId?: string }) => x.jobId === setup.jobId);
    assert.equal(card?.safeToUnplug, true);
    assert.match(card?.detail ?? '', /NOT erased: the station did not mount it/);
    const notes = await notesOf(setup);
    assert.ok(notes.includes(`eraseDevice: the device was not erased: the station did not mount it (${dev} was mounted at ${mnt} by someone else)`), notes.join('\n'));
    assert.equal((await objectsIn(setup.s3, setup.bucket)).size, Object.keys(FILES).length, 'the files were loaded');
    assert.equal(await d.kill('SIGTERM'), 0);
  } finally {
    execFileSync('umount', [mnt]);
  }
  assert.equal(sha256File(image), before);
});

test('eraseDevice: yes but the job ends CompletedWithErrors: not erased, the reason on the job', { skip: !loops && WHY_NOT }, async (t) => {
  // An empty replacement that occurs in a key makes that file 400 InvalidSubstitution: an error row.
  const { setup, d, image } = await stationWithDaemon(t, 'eraseDevice: yes\nsubstitutions:\n  "one": ""\n');
  const before = sha256File(image);
  attach(t, image);
  await d.waitFor(stageIs(setup.jobId, 'erase-failed'), 'erase-failed', 120_000);
  const job = JSON.parse((await setup.runAsync(['job', 'status', setup.jobId, '--json'])).stdout);
  assert.equal(job.jobStatus, 'CompletedWithErrors');
  const notes = await notesOf(setup);
  assert.ok(notes.some((n) => /^eraseDevice: the device was not erased: the job ended CompletedWithErrors \(1 files with errors/.test(n)), notes.join('\n'));
  assert.equal(await d.kill('SIGTERM'), 0);
  assert.equal(sha256File(image), before);
});
