import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readMounts } from '../src/drives/mountinfo.js';
import { stageIs, startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import { attachLoop, detachLoop, ensureFsTools, lockLoopDevices, loopDevicesWork, makeImage, sha256File } from './support/images.js';
import { bytes, logFromBucket, md5, objectsIn, setupLoad } from './support/load.js';

test('a real ext4 image attached with losetup is mounted read-only by the daemon, loaded, and never written', async (t) => {
  if (!loopDevicesWork()) {
    t.skip('needs root and working loop devices (losetup); not available here');
    return;
  }
  ensureFsTools();
  // Alone with the loop devices: the daemon takes every new block device for a drive.
  t.after(await lockLoopDevices());
  const setup = await setupLoad(t, { config: watchMedia(true) });
  const media = useMediaRoot(setup);
  const files = { 'photos/one.jpg': bytes(70_000, 1), 'notes ü.txt': 'non-ASCII name', 'big.bin': bytes(6 * 1024 * 1024, 2) };
  const image = makeImage(setup.dir, 'ext4', { ...files, SIGNATURE: readFileSync(join(setup.drive, 'SIGNATURE')) });
  const before = sha256File(image);

  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  const device = attachLoop(image);
  let attached = true;
  t.after(() => {
    if (attached) detachLoop(device);
  });
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done', 120_000);
  const mounting = d.events.find((e) => e.stage === 'mounting');
  assert.ok(mounting, 'the daemon mounted the partition itself');

  const objects = await objectsIn(setup.s3, setup.bucket);
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects.get(name) ?? ''), md5(content), name);
  const { rows } = await logFromBucket(setup);
  assert.equal(rows.find((r) => r.File === 'SIGNATURE')?.Status, '103');
  assert.equal(rows.filter((r) => r.Status === '200').length, Object.keys(files).length);

  const ours = (await readMounts()).filter((m) => m.mountpoint.startsWith(join(setup.dataDir, 'run')));
  assert.deepEqual(ours, [], 'unmounted once loaded: safe to unplug');
  assert.equal(await d.kill('SIGTERM'), 0);
  detachLoop(device);
  attached = false;
  assert.equal(sha256File(image), before, "the drive's image is byte for byte what it was");
});
