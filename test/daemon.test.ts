import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stageIs, startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import { MiB, bytes, logFromBucket, md5, objectsIn, openUploads, setupLoad, setupLoadViaProxy, writeDrive, type LoadSetup } from './support/load.js';
import { makeBucket } from './support/rgw.js';

/** A station whose daemon watches `media/` in its temp folder, S3 reached through a fault proxy. */
async function daemonSetup(t: Parameters<typeof setupLoad>[0], upload = '') {
  const setup = await setupLoadViaProxy(t, {
    upload,
    config: watchMedia(false),
  });
  const media = useMediaRoot(setup);
  return { setup, media, proxy: setup.proxy };
}


/** The drive's files as the daemon must store them. */
function driveFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = { 'big.bin': bytes(31 * MiB, 11) };
  for (let i = 0; i < 12; i++) files[`docs/f${i}.txt`] = bytes(2000 + i, i);
  return files;
}

/** Every object equals the drive's file, the log has exactly one row per file, no multipart upload is open. */
async function assertLoaded(setup: LoadSetup, files: Record<string, Buffer>): Promise<void> {
  const objects = await objectsIn(setup.s3, setup.bucket);
  assert.deepEqual([...objects.keys()].sort(), Object.keys(files).sort());
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects.get(name)!), md5(content), name);
  const { rows } = await logFromBucket(setup);
  assert.deepEqual(rows.map((r) => r.File).sort(), ['SIGNATURE', ...Object.keys(files)].sort(), 'exactly one row per file');
  for (const row of rows.filter((r) => r.Status === '200')) assert.equal(row.MD5, md5(files[row.File]!), row.File);
  assert.equal(await openUploads(setup.s3, setup.bucket), 0, 'no multipart upload left open');
}

const status = async (setup: LoadSetup) => JSON.parse((await setup.runAsync(['status', '--json'])).stdout);

test('a directory appearing under a mount root is loaded; station status says when it is safe to unplug', async (t) => {
  const { setup, media } = await daemonSetup(t);
  const files = { 'a.txt': Buffer.from('a'), 'dir/b.txt': Buffer.from('b') };
  writeDrive(setup.drive, files);
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  assert.deepEqual((await status(setup)).drives, []);
  renameSync(setup.drive, join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done');
  const st = await status(setup);
  assert.equal(st.drives.length, 1);
  assert.equal(st.drives[0].stage, 'done');
  assert.equal(st.drives[0].safeToUnplug, true);
  assert.match(st.drives[0].detail, /Completed.*safe to unplug/);
  const plain = await setup.runAsync(['status']);
  assert.match(plain.stdout, new RegExp(`${setup.jobId}  done - job ${setup.jobId} Completed: safe to unplug`));
  await assertLoaded(setup, files);
  renameSync(join(media, 'drive1'), join(setup.dir, 'unplugged'));
  await d.waitFor((e) => e.msg === 'drive detached', 'detached');
  assert.equal(await d.kill('SIGTERM'), 0);
});

/**
 * Starts a daemon on the drive and kills it (SIGKILL) once parts 1 and 2 of big.bin are journaled; parts are
 * slowed so the kill comes mid-upload. Returns the parts the restart must not send again.
 */
async function killMidUpload(t: Parameters<typeof setupLoad>[0]) {
  const { setup, media, proxy } = await daemonSetup(t, '  maxRequests: 2\n');
  const files = driveFiles();
  writeDrive(setup.drive, files);
  proxy.addRule({ match: (r) => r.method === 'PUT' && r.query.has('partNumber'), fault: { kind: 'delay', ms: 400 }, times: 1000 });
  renameSync(setup.drive, join(media, 'drive1'));
  const first = startDaemon(t, setup);
  // The parts the journal holds: a part is journaled once S3 acknowledged it (S3 may have acknowledged a part or
  // two more when the kill comes; those are sent again).
  const journaled = (): number[] => {
    const db = new Database(join(setup.dataDir, 'station.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT part_number FROM parts ORDER BY part_number').all() as Array<{ part_number: number }>).map((r) => r.part_number);
    } catch {
      return []; // not created yet
    } finally {
      db.close();
    }
  };
  const prefix = () => journaled().filter((n, i) => n === i + 1).length;
  for (let i = 0; i < 600 && prefix() < 2; i++) await sleep(50);
  assert.ok(prefix() >= 2, 'parts 1 and 2 were journaled before the kill');
  await first.kill('SIGKILL');
  // Parts go up two at a time and may be acknowledged out of order; the resume continues after the unbroken
  // run of journaled parts from part 1 (the whole-file hash goes in order), which must not be sent again.
  const journaledParts = journaled();
  const held = journaledParts.filter((n, i) => n === i + 1);
  assert.ok(held.length >= 1 && journaledParts.length < 7, `killed mid-upload: journaled ${journaledParts.join(', ')}`);
  return { setup, media, proxy, files, held };
}

/** How many times S3 acknowledged part `n` of an upload. */
const partsSent = (proxy: Awaited<ReturnType<typeof killMidUpload>>['proxy'], n: number) =>
  proxy.log.filter((l) => new RegExp(`partNumber=${n}(&|$)`).test(l.query) && l.method === 'PUT' && l.status === 200).length;

test('kill -9 in the middle of a multipart upload: the restarted daemon resumes after the last part S3 holds', async (t) => {
  const { setup, proxy, files, held } = await killMidUpload(t);
  const second = startDaemon(t, setup);
  await second.waitFor(stageIs(setup.jobId, 'done'), 'done after resume', 120_000);
  await second.waitFor((e) => e.msg === 'resuming a multipart upload', 'resume');
  await assertLoaded(setup, files);
  for (const n of held) assert.equal(partsSent(proxy, n), 1, `part ${n}, journaled before the kill, was not sent again`);
  assert.equal(await second.kill('SIGTERM'), 0);
});

test('kill -9 mid-upload, then the sent part of the file changes in place (same size and time): the upload starts again', async (t) => {
  const { setup, media, proxy, files, held } = await killMidUpload(t);
  // The whole-file MD5 is rebuilt on resume by reading the sent parts again; each must still be what S3 holds.
  const big = join(media, 'drive1', 'big.bin');
  const times = join(setup.dir, 'times');
  execFileSync('touch', ['-r', big, times]); // to the nanosecond, as the journal compares it
  const changed = Buffer.from(files['big.bin']!);
  changed.fill(0x5a, 1000, 2000);
  writeFileSync(big, changed);
  execFileSync('touch', ['-r', times, big]);
  files['big.bin'] = changed;
  const second = startDaemon(t, setup);
  await second.waitFor(stageIs(setup.jobId, 'done'), 'done after the new upload', 120_000);
  await second.waitFor((e) => e.msg === 'starting the upload again' && /reads differently/.test(String(e.reason)), 'a fresh upload, and why');
  await assertLoaded(setup, files);
  for (const n of held) assert.equal(partsSent(proxy, n), 2, `part ${n} was sent again with the file's new bytes`);
  assert.equal(await second.kill('SIGTERM'), 0);
});

test('the drive pulled mid-load: the job stays InProgress, and plugging it back resumes it', async (t) => {
  const { setup, media, proxy } = await daemonSetup(t, '  maxRequests: 2\n');
  const files = driveFiles();
  writeDrive(setup.drive, files);
  proxy.addRule({ match: (r) => r.method === 'PUT', fault: { kind: 'delay', ms: 600 }, times: 1000 });
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  renameSync(setup.drive, join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'loading'), 'loading');
  await sleep(800);
  renameSync(join(media, 'drive1'), join(setup.dir, 'in-hand'));
  await d.waitFor(stageIs(setup.jobId, 'removed'), 'removed');
  const st = await status(setup);
  assert.equal(st.drives[0].stage, 'removed');
  assert.match(st.drives[0].detail, /plug it back to resume/);
  await sleep(1500);
  const job = JSON.parse((await setup.runAsync(['job', 'status', setup.jobId, '--json'])).stdout);
  assert.equal(job.jobStatus, 'InProgress');
  renameSync(join(setup.dir, 'in-hand'), join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done after plugging back', 120_000);
  await assertLoaded(setup, files);
  assert.equal(await d.kill('SIGTERM'), 0);
});

test('SIGTERM mid-load exits 0 with the job InProgress; the next start finishes it', async (t) => {
  const { setup, media, proxy } = await daemonSetup(t);
  const files = driveFiles();
  writeDrive(setup.drive, files);
  proxy.addRule({ match: (r) => r.method === 'PUT', fault: { kind: 'delay', ms: 300 }, times: 1000 });
  renameSync(setup.drive, join(media, 'drive1'));
  const first = startDaemon(t, setup);
  await first.waitFor(stageIs(setup.jobId, 'loading'), 'loading');
  await sleep(600);
  assert.equal(await first.kill('SIGTERM'), 0);
  assert.ok(first.events.some((e) => e.msg === 'stopped'));
  const job = JSON.parse((await setup.runAsync(['job', 'status', setup.jobId, '--json'])).stdout);
  assert.equal(job.jobStatus, 'InProgress');
  const second = startDaemon(t, setup);
  await second.waitFor(stageIs(setup.jobId, 'done'), 'done', 120_000);
  await assertLoaded(setup, files);
  assert.equal(await second.kill('SIGTERM'), 0);
});

test('SIGTERM while the daemon is still starting: it finishes the start, then stops and exits 0', async (t) => {
  // The screen's line is logged in the middle of the start (the drive watcher starts after it). A stop that did not
  // wait for the start left the watcher and the timers the start went on to make: the process never exited.
  const { setup } = await daemonSetup(t);
  const d = startDaemon(t, setup);
  d.killWhen((e) => /station screen/.test(e.msg), 'SIGTERM');
  assert.equal(await d.exit(), 0);
  const msgs = d.events.map((e) => e.msg);
  assert.ok(msgs.includes('signal received') && msgs.at(-1) === 'stopped', msgs.join(' | '));
});

test('a second drive with the SIGNATURE of a job already loading is refused and reported', async (t) => {
  const { setup, media, proxy } = await daemonSetup(t, '  maxRequests: 2\n');
  const files = driveFiles();
  writeDrive(setup.drive, files);
  cpSync(setup.drive, join(setup.dir, 'twin'), { recursive: true });
  proxy.addRule({ match: (r) => r.method === 'PUT', fault: { kind: 'delay', ms: 600 }, times: 1000 });
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  renameSync(setup.drive, join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'loading'), 'loading');
  renameSync(join(setup.dir, 'twin'), join(media, 'drive2'));
  const refused = await d.waitFor((e) => e.stage === 'refused', 'refused');
  assert.match(String(refused.detail), new RegExp(`job ${setup.jobId} is already loading from .*drive1`));
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done', 120_000);
  await assertLoaded(setup, files);
});

test('two drives of two jobs load at the same time under the station one budget', async (t) => {
  const { setup, media, proxy } = await daemonSetup(t, '  maxRequests: 2\n');
  const bucket2 = await makeBucket(setup.s3, 'second');
  const manifest2 = join(setup.dir, 'manifest2.yaml');
  writeFileSync(manifest2, readFileSync(join(setup.dir, 'manifest.yaml'), 'utf8').replace(`bucket: ${setup.bucket}`, `bucket: ${bucket2}`));
  const drive2 = join(setup.dir, 'drive2');
  mkdirSync(drive2);
  const created = await setup.runAsync(['job', 'create', manifest2, '--signature-out', join(drive2, 'SIGNATURE'), '--json']);
  assert.equal(created.code, 0, created.stderr);
  const job2 = JSON.parse(created.stdout).jobId as string;
  const files = driveFiles();
  writeDrive(setup.drive, files);
  writeDrive(drive2, files);
  proxy.addRule({ match: (r) => r.method === 'PUT', fault: { kind: 'delay', ms: 300 }, times: 1000 });
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  renameSync(setup.drive, join(media, 'drive1'));
  renameSync(drive2, join(media, 'drive2'));
  await d.waitFor(stageIs(setup.jobId, 'loading'), 'first loading');
  await d.waitFor(stageIs(job2, 'loading'), 'second loading');
  const both = (await status(setup)).drives.filter((x: { stage: string }) => x.stage === 'loading');
  assert.equal(both.length, 2, 'both drives load at once');
  await d.waitFor(stageIs(setup.jobId, 'done'), 'first done', 120_000);
  await d.waitFor(stageIs(job2, 'done'), 'second done', 120_000);
  await assertLoaded(setup, files);
  const objects2 = await objectsIn(setup.s3, bucket2);
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects2.get(name)!), md5(content), name);
  assert.equal(await d.kill('SIGTERM'), 0);
});
