// Mounting drives read-only, on real file-system images attached as loop devices (root only: elsewhere every
// case is skipped, saying why). Each case proves the drive is never written: the image's SHA-256 is the same
// after the mount, the reads and the attempted write as before.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { isReadOnly, probeFilesystem, serialOf, setReadOnly } from '../src/drives/blockdev.js';
import { MountRefused, mountReadOnly, unmountStale, type MountedDrive } from '../src/drives/mount.js';
import { readMounts } from '../src/drives/mountinfo.js';
import {
  attachLoop,
  detachLoop,
  holdLoopDevices,
  LOOPS_WHY_NOT,
  type Files,
  type ImageOptions,
  type ImageType,
  makeImage,
  sha256File,
} from './support/images.js';

const loops = holdLoopDevices();
const WHY_NOT = LOOPS_WHY_NOT;

/** Names that every driver must give back as written: long, mixed case, spaces, non-ASCII, nested. */
const FILES: Files = {
  'Readme.txt': 'hello from the drive\n',
  'Empty File.txt': '',
  'Photos/Été 2009/Café – ünïcødé.txt': 'a non-ASCII name, two directories down\n',
  'Photos/Binary.bin': Buffer.concat(Array.from({ length: 3000 }, (_, i) => createHash('sha256').update(String(i)).digest())),
};

interface Attached {
  dir: string;
  image: string;
  dev: string;
  runDir: string;
  sha256: string;
  /** mounted drives this test has not unmounted yet */
  mounted: Set<MountedDrive>;
}

/** A temporary image of `type`, attached; unmounted, detached and removed after the test, pass or fail. */
function attach(t: TestContext, type: ImageType, files: Files = {}, options: ImageOptions = {}): Attached {
  const dir = mkdtempSync(join(tmpdir(), `mount-test-${type}-`));
  const a: Attached = { dir, image: '', dev: '', runDir: join(dir, 'run'), sha256: '', mounted: new Set() };
  t.after(async () => {
    for (const m of a.mounted) await m.unmount().catch(() => undefined);
    if (a.dev) detachLoop(a.dev);
    rmSync(dir, { recursive: true, force: true });
  });
  a.image = makeImage(dir, type, files, options);
  a.sha256 = sha256File(a.image);
  a.dev = attachLoop(a.image);
  return a;
}

async function mount(a: Attached): Promise<MountedDrive> {
  const m = await mountReadOnly(a.dev, a.runDir);
  a.mounted.add(m);
  return m;
}

async function unmount(a: Attached, m: MountedDrive): Promise<void> {
  await m.unmount();
  a.mounted.delete(m);
}

/** Every regular file under `root`, by path relative to it. */
function readTree(root: string, rel = ''): Files {
  const out: Files = {};
  for (const name of readdirSync(join(root, rel))) {
    const path = rel ? `${rel}/${name}` : name;
    if (path === 'lost+found') continue;
    const st = statSync(join(root, path));
    if (st.isDirectory()) Object.assign(out, readTree(root, path));
    else out[path] = readFileSync(join(root, path));
  }
  return out;
}

function asBuffers(files: Files): Files {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
}

async function mountInfo(mountpoint: string): Promise<{ options: string[]; superOptions: string[]; fsType: string; source: string }> {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === mountpoint);
  assert.ok(line, `${mountpoint} is in /proc/self/mountinfo`);
  const [before, after] = line.split(' - ') as [string, string];
  const [fsType, source, superOptions] = after.split(' ') as [string, string, string];
  return { options: before.split(' ')[5]!.split(','), superOptions: superOptions.split(','), fsType, source };
}

/** Processes with `path` among their arguments (a FUSE driver has its mount point there). */
function processesNaming(path: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return args.includes(path) ? [args.join(' ')] : [];
      } catch {
        return [];
      }
    });
}

function assertNotWritable(mountpoint: string): void {
  assert.throws(
    () => writeFileSync(join(mountpoint, 'written-by-the-station.txt'), 'no'),
    (err: NodeJS.ErrnoException) => err.code === 'EROFS' || err.code === 'EACCES',
  );
  assert.throws(
    () => writeFileSync(join(mountpoint, 'Readme.txt'), 'no', { flag: 'r+' }),
    (err: NodeJS.ErrnoException) => err.code === 'EROFS' || err.code === 'EACCES',
  );
}

const CASES: { type: ImageType; fsType: string; label: string; extra?: (m: MountedDrive) => Files }[] = [
  { type: 'ext2', fsType: 'ext2', label: 'Été "x" 2009' },
  { type: 'ext3', fsType: 'ext3', label: 'DRIVE ext3' },
  { type: 'ext4', fsType: 'ext4', label: 'Été "x" 2009' },
  { type: 'xfs', fsType: 'xfs', label: 'DRIVE_XFS' },
  // fusefat shows the volume label as an empty file at the root (the drive's notes say so).
  { type: 'vfat', fsType: 'vfat', label: 'DRIVE1', extra: () => ({ DRIVE1: '' }) },
  { type: 'ntfs', fsType: 'ntfs', label: 'Été 2009 NTFS' },
];

for (const c of CASES) {
  test(`${c.type}: mounted read-only, nosuid, nodev, noexec; files read back; the image is never written`, async (t) => {
    if (!loops) return t.skip(WHY_NOT);
    const a = attach(t, c.type, FILES, { label: c.label });
    const probe = await probeFilesystem(a.dev);
    assert.equal(probe.type, c.fsType);
    assert.equal(probe.label, c.label);
    assert.match(probe.uuid ?? '', /^[0-9A-Fa-f-]{8,}$/);

    const m = await mount(a);
    assert.equal(m.device, a.dev);
    assert.equal(m.fsType, c.fsType);
    assert.equal(m.label, c.label);
    assert.equal(m.serial, undefined, 'loop devices have no serial');
    assert.ok(m.mountpoint.startsWith(`${a.runDir}/mnt/${a.dev.slice('/dev/'.length)}-`), m.mountpoint);
    assert.equal(statSync(join(m.mountpoint, '..')).mode & 0o777, 0o700);
    assert.equal(await isReadOnly(a.dev), true, 'the block device is read-only while mounted');

    const info = await mountInfo(m.mountpoint);
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) assert.ok(info.options.includes(o), `${o} in ${info.options.join(',')}`);
    assert.equal(info.source, a.dev);
    assert.deepEqual(readTree(m.mountpoint), asBuffers({ ...FILES, ...c.extra?.(m) }));
    assertNotWritable(m.mountpoint);
    if (c.type === 'vfat') assert.ok(m.notes.some((n) => n.includes('"DRIVE1" appears as an empty file')), m.notes.join('\n'));
    else assert.deepEqual(m.notes, [], 'a clean file system needs no note');

    await unmount(a, m);
    assert.equal((await readMounts()).some((e) => e.mountpoint === m.mountpoint), false, 'unmounted');
    assert.deepEqual(processesNaming(m.mountpoint), [], 'no FUSE driver left holding the device');
    assert.deepEqual(readdirSync(join(a.runDir, 'mnt')), [], 'the mount point is removed');
    assert.equal(await isReadOnly(a.dev), false, 'read-write again, as it was found');
    await m.unmount(); // a second call does nothing
    detachLoop(a.dev);
    a.dev = '';
    assert.equal(sha256File(a.image), a.sha256, 'the image is unchanged');
  });
}

for (const type of ['ext4', 'xfs'] as const) {
  test(`${type} with a journal that needs recovery: mounted without replaying it, noted, never written`, async (t) => {
    if (!loops) return t.skip(WHY_NOT);
    const a = attach(t, type, FILES, { dirty: true });
    const m = await mount(a);
    assert.deepEqual(m.notes, [
      type === 'xfs'
        ? "the file system's log was not replayed: files written only to the log are not visible"
        : "the file system's journal was not replayed: files written only to the journal are not visible",
    ]);
    const info = await mountInfo(m.mountpoint);
    // ext4 shows `noload` under its other name.
    assert.ok(info.superOptions.includes('norecovery'), info.superOptions.join(','));
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) assert.ok(info.options.includes(o), `${o} in ${info.options.join(',')}`);
    const tree = readTree(m.mountpoint);
    for (const [path, content] of Object.entries(FILES)) assert.deepEqual(tree[path], Buffer.from(content), path);
    assertNotWritable(m.mountpoint);
    await unmount(a, m);
    detachLoop(a.dev);
    a.dev = '';
    assert.equal(sha256File(a.image), a.sha256, 'the journal was not replayed onto the image');
  });
}

const REFUSALS: { type: ImageType; reason: RegExp; fsType?: string }[] = [
  { type: 'exfat', reason: /^unsupported file system exfat$/, fsType: 'exfat' },
  { type: 'hfsplus', reason: /^HFS\+ is unsupported here/, fsType: 'hfsplus' },
  { type: 'blank', reason: /^no file system found on the device$/ },
  { type: 'ambiguous', reason: /more than one file system on the device \(vfat FAT16, ext4 1\.0\)/ },
];

for (const r of REFUSALS) {
  test(`${r.type}: MountRefused with the reason; the device is left as it was found`, async (t) => {
    if (!loops) return t.skip(WHY_NOT);
    const a = attach(t, r.type);
    await assert.rejects(mountReadOnly(a.dev, a.runDir), (err: unknown) => {
      assert.ok(err instanceof MountRefused, String(err));
      assert.match(err.reason, r.reason);
      assert.equal(err.fsType, r.fsType);
      assert.equal(err.device, a.dev);
      return true;
    });
    assert.equal(existsSync(join(a.runDir, 'mnt')), false, 'refused before a mount point was made');
    assert.equal(await isReadOnly(a.dev), false);
    detachLoop(a.dev);
    a.dev = '';
    assert.equal(sha256File(a.image), a.sha256);
  });
}

test('a device that was already read-only stays read-only after unmount', async (t) => {
  if (!loops) return t.skip(WHY_NOT);
  const a = attach(t, 'ext4', FILES);
  await setReadOnly(a.dev);
  const m = await mount(a);
  await unmount(a, m);
  assert.equal(await isReadOnly(a.dev), true, 'this module did not set it: it does not clear it');
});

test('a mount that fails (a corrupt ext4) is MountRefused with what mount said, and undone', async (t) => {
  if (!loops) return t.skip(WHY_NOT);
  const a = attach(t, 'ext4', FILES);
  detachLoop(a.dev);
  // Zero the block group descriptors, in the block after the superblock's. blkid reads only the superblock.
  const img = readFileSync(a.image);
  const blockSize = 1024 << img.readUInt32LE(1024 + 24);
  const gdt = (img.readUInt32LE(1024 + 20) + 1) * blockSize;
  img.fill(0, gdt, gdt + blockSize);
  writeFileSync(a.image, img);
  a.sha256 = sha256File(a.image);
  a.dev = attachLoop(a.image);
  await assert.rejects(mountReadOnly(a.dev, a.runDir), (err: unknown) => {
    assert.ok(err instanceof MountRefused, String(err));
    assert.match(err.reason, /^the ext4 file system could not be mounted: mount\(2\) system call failed: Structure needs cleaning/);
    assert.equal(err.fsType, 'ext4');
    return true;
  });
  assert.deepEqual(readdirSync(join(a.runDir, 'mnt')), []);
  assert.equal(await isReadOnly(a.dev), false);
});

test('unmountStale unmounts and removes what a crashed run left under run/mnt, FUSE included', async (t) => {
  if (!loops) return t.skip(WHY_NOT);
  const ext = attach(t, 'ext4', FILES);
  const fat = attach(t, 'vfat', FILES);
  fat.runDir = ext.runDir;
  // The daemon "crashes" here: nobody calls unmount() (the test's cleanup still does, should this test fail).
  const left = [await mount(ext), await mount(fat)];
  const unmounted = await unmountStale(ext.runDir);
  assert.deepEqual(unmounted.sort(), left.map((m) => m.mountpoint).sort());
  const mounts = await readMounts();
  for (const m of left) assert.equal(mounts.some((e) => e.mountpoint === m.mountpoint), false, `${m.mountpoint} unmounted`);
  assert.deepEqual(readdirSync(join(ext.runDir, 'mnt')), []);
  assert.deepEqual(await unmountStale(ext.runDir), [], 'nothing left the second time');
  assert.deepEqual(await unmountStale(join(ext.dir, 'never-used')), [], 'no mnt folder: nothing to do');
  for (const a of [ext, fat]) {
    detachLoop(a.dev);
    a.dev = '';
    assert.equal(sha256File(a.image), a.sha256);
  }
});

test('serialOf: none for a loop device', async (t) => {
  if (!loops) return t.skip(WHY_NOT);
  const a = attach(t, 'blank');
  assert.equal(await serialOf(a.dev), undefined);
});

test('a device that is already mounted is left alone', async (t) => {
  if (!loops) return t.skip(WHY_NOT);
  const a = attach(t, 'ext4', FILES);
  const m = await mount(a);
  await assert.rejects(mountReadOnly(a.dev, a.runDir), new RegExp(`^Error: ${a.dev} is already mounted at ${m.mountpoint}`));
  assert.equal(readdirSync(join(a.runDir, 'mnt')).length, 1, 'no second mount point');
  assert.equal(await isReadOnly(a.dev), true);
});
