// Small file-system images for tests of mounting, attached as loop devices (root only).
//
// makeImage() writes a sparse image file holding `files` (paths with `/`, directories implied):
//   ext2/3/4  mke2fs -d (filled from a directory, no mount)     vfat  mkfs.vfat -F 32, then mtools (no mount)
//   ntfs      mkntfs, filled through ntfs-3g on a loop device  xfs   mkfs.xfs (300 MiB: its minimum), filled
//                                                                    through a read-write mount of a loop device
// and, to be refused: exfat (mkfs.exfat, empty), hfsplus (only a volume header: enough for blkid, as no HFS+
// tools are in Debian 12 main), blank (zeros), ambiguous (ext4 with a FAT boot sector in its unused first
// sector: blkid exits 8).
//
// `dirty: true` (ext3, ext4, xfs) leaves a journal (log) that needs recovery: the image is mounted read-write, a
// file is written and fsynced (committed to the journal), and the file system is shut down without flushing
// the log (the FS_IOC_SHUTDOWN ioctl, through `xfs_io -x -c shutdown`, which ext4 accepts too) before umount.
//
// The loop device's read-only flag outlives it (it applies to the next image attached there): attachLoop()
// clears it after attaching and detachLoop() before detaching.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export type ImageType = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'vfat' | 'ntfs' | 'exfat' | 'hfsplus' | 'blank' | 'ambiguous';
export type Files = Record<string, string | Buffer>;

export interface ImageOptions {
  label?: string;
  /** leave a journal (log) that needs recovery: ext3, ext4, xfs */
  dirty?: boolean;
}

/** The file written last in a dirty image: it is in the journal, and may or may not be in the file system. */
const JOURNAL_ONLY_FILE = 'written-to-the-journal.txt';

const SIZE_MIB: Record<ImageType, number> = {
  ext2: 16, ext3: 16, ext4: 16, xfs: 300, vfat: 40, ntfs: 16, exfat: 16, hfsplus: 4, blank: 4, ambiguous: 16,
};

const INSTALL = fileURLToPath(new URL('../s3/install-fs-tools.sh', import.meta.url));

/** Installs the Debian packages the images and mounts need, when missing (fast when all are there). */
export function ensureFsTools(): void {
  execFileSync('bash', [INSTALL], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Root, a loop-control device, and a free loop device: what attaching images needs. */
export function loopDevicesWork(): boolean {
  if (process.getuid?.() !== 0 || !existsSync('/dev/loop-control')) return false;
  return spawnSync('losetup', ['-f'], { stdio: 'ignore' }).status === 0;
}

export function attachLoop(image: string): string {
  const dev = sh('losetup', ['-f', '--show', image]).trim();
  sh('blockdev', ['--setrw', dev]);
  return dev;
}

export function detachLoop(dev: string): void {
  sh('blockdev', ['--setrw', dev]);
  sh('losetup', ['-d', dev]);
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Writes `dir/<type>.img` (or `<type>-N.img` when taken) and returns its path. */
export function makeImage(dir: string, type: ImageType, files: Files = {}, options: ImageOptions = {}): string {
  let image = join(dir, `${type}.img`);
  for (let n = 2; existsSync(image); n++) image = join(dir, `${type}-${n}.img`);
  writeFileSync(image, '');
  truncateSync(image, SIZE_MIB[type] << 20);
  const label = options.label;
  if (['exfat', 'hfsplus', 'blank', 'ambiguous'].includes(type) && Object.keys(files).length > 0) {
    throw new Error(`makeImage: ${type} images are made empty`);
  }
  switch (type) {
    case 'ext2':
    case 'ext3':
    case 'ext4': {
      const src = mkdtempSync(join(dir, 'src-'));
      writeTree(src, files);
      sh('mke2fs', ['-q', '-F', '-t', type, '-d', src, ...(label ? ['-L', label] : []), image]);
      rmSync(src, { recursive: true });
      break;
    }
    case 'vfat':
      sh('mkfs.vfat', ['-F', '32', ...(label ? ['-n', label] : []), image]);
      writeFat(dir, image, files);
      break;
    case 'ntfs':
      sh('mkntfs', ['-Q', '-q', '-F', ...(label ? ['-L', label] : []), image]);
      // ntfs-3g on a block device mounts as fuseblk, whose umount waits until everything is written.
      withLoopMount(dir, image, ['ntfs-3g'], (mnt) => writeTree(mnt, files));
      break;
    case 'xfs':
      sh('mkfs.xfs', ['-q', ...(label ? ['-L', label] : []), image]);
      withLoopMount(dir, image, ['mount', '-t', 'xfs'], (mnt) => writeTree(mnt, files));
      break;
    case 'exfat':
      sh('mkfs.exfat', [...(label ? ['-L', label] : []), image]);
      break;
    case 'hfsplus':
      writeHfsPlusHeader(image);
      break;
    case 'blank':
      break;
    case 'ambiguous': {
      sh('mke2fs', ['-q', '-F', '-t', 'ext4', image]);
      const fat = join(dir, 'fat16-boot.img');
      writeFileSync(fat, '');
      truncateSync(fat, 16 << 20);
      sh('mkfs.vfat', ['-F', '16', fat]);
      sh('dd', [`if=${fat}`, `of=${image}`, 'bs=512', 'count=1', 'conv=notrunc', 'status=none']);
      rmSync(fat);
      break;
    }
  }
  if (options.dirty) makeDirty(dir, image, type);
  return image;
}

function writeTree(root: string, files: Files): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/**
 * mtools fills a FAT image without a mount. A name that fits 8.3 in one case (`readme.txt`) gets no VFAT long
 * name, only case flags, which fusefat ignores (`README.TXT`): tests that expect names back use mixed case.
 */
function writeFat(dir: string, image: string, files: Files): void {
  const made = new Set<string>();
  const src = mkdtempSync(join(dir, 'src-'));
  for (const [path, content] of Object.entries(files)) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!made.has(d)) sh('mmd', ['-i', image, `::/${d}`]);
      made.add(d);
    }
    const tmp = join(src, 'file');
    writeFileSync(tmp, content);
    sh('mcopy', ['-i', image, tmp, `::/${path}`]);
  }
  rmSync(src, { recursive: true });
}

function withLoopMount(dir: string, image: string, mountCmd: string[], fn: (mnt: string) => void): void {
  const dev = attachLoop(image);
  const mnt = mkdtempSync(join(dir, 'fill-'));
  try {
    sh(mountCmd[0]!, [...mountCmd.slice(1), dev, mnt]);
    try {
      fn(mnt);
    } finally {
      sh('umount', [mnt]);
    }
  } finally {
    rmSync(mnt, { recursive: true });
    detachLoop(dev);
  }
}

function makeDirty(dir: string, image: string, type: ImageType): void {
  if (type !== 'ext3' && type !== 'ext4' && type !== 'xfs') throw new Error(`makeImage: no journal to leave dirty on ${type}`);
  withLoopMount(dir, image, ['mount', '-t', type === 'xfs' ? 'xfs' : 'ext4'], (mnt) => {
    const file = join(mnt, JOURNAL_ONLY_FILE);
    writeFileSync(file, 'committed to the journal, never checkpointed\n');
    sh('xfs_io', ['-c', 'fsync', file]);
    sh('xfs_io', ['-x', '-c', 'shutdown', mnt]);
  });
  if (type !== 'xfs') {
    const features = sh('dumpe2fs', ['-h', image]);
    if (!/^Filesystem features:.*\bneeds_recovery\b/m.test(features)) throw new Error(`makeImage: ${image} does not need recovery`);
  }
}

/**
 * An HFS+ volume header at 1024: signature `H+`, version 4, block size 4096, 1024 blocks. blkid calls it
 * hfsplus; no driver here could mount it, which is the point.
 */
function writeHfsPlusHeader(image: string): void {
  const header = Buffer.alloc(512);
  header.write('H+', 0, 'latin1');
  header.writeUInt16BE(4, 2);
  header.writeUInt32BE(4096, 0x28);
  header.writeUInt32BE(1024, 0x2c);
  const fd = openSync(image, 'r+');
  try {
    writeSync(fd, header, 0, header.length, 1024);
  } finally {
    closeSync(fd);
  }
}

function sh(cmd: string, args: string[]): string {
  // UTF-8, or mtools writes each byte of a non-ASCII name as a character of its own.
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', MTOOLS_SKIP_CHECK: '1' } });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

const LOOP_LOCK = join(tmpdir(), 'import-station-test-loop-devices.lock');

/**
 * Test files that attach loop devices run in parallel with each other; a daemon under test takes every new
 * block device for a drive. This lock (a directory holding the owner's pid) lets one such file work at a time.
 * Returns the release function.
 */
export async function lockLoopDevices(): Promise<() => void> {
  for (;;) {
    try {
      mkdirSync(LOOP_LOCK);
      writeFileSync(join(LOOP_LOCK, 'pid'), String(process.pid));
      return () => rmSync(LOOP_LOCK, { recursive: true, force: true });
    } catch {
      const owner = Number(readFileSyncSafe(join(LOOP_LOCK, 'pid')));
      if (owner > 0 && !alive(owner)) rmSync(LOOP_LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const LOOPS_WHY_NOT = 'needs root and working loop devices (losetup -f, /dev/loop-control)';

/**
 * For a test file whose tests use loop devices: whether they work here (with the file-system tools installed when
 * they do), and the lock on them held from the file's first test to its last, so that no daemon under test
 * elsewhere takes these images for drives.
 */
export function holdLoopDevices(): boolean {
  const loops = loopDevicesWork();
  if (loops) ensureFsTools();
  let release: (() => void) | undefined;
  before(async () => {
    if (loops) release = await lockLoopDevices();
  });
  after(() => release?.());
  return loops;
}

/** In one test: the lock on the loop devices until it ends; or false, the test skipped saying `why`, where they do not work. */
export async function takeLoopDevices(t: { skip: (message: string) => void; after: (fn: () => void) => void }, why: string): Promise<boolean> {
  if (!loopDevicesWork()) {
    t.skip(why);
    return false;
  }
  ensureFsTools();
  t.after(await lockLoopDevices());
  return true;
}

/**
 * Attaches an image to a loop device and mounts it read-only at `mnt` (made here) as the daemon would (device set
 * read-only first, `noload` so a journal is not replayed). `unmount()` ends the mount early (to compare the image
 * afterwards); whatever is left is unmounted and detached when the test ends.
 */
export function mountImageReadOnly(t: { after: (fn: () => void) => void }, image: string, mnt: string): { dev: string; unmount: () => void } {
  const dev = attachLoop(image);
  mkdirSync(mnt);
  let mounted = false;
  const unmount = () => {
    if (mounted) execFileSync('umount', [mnt]);
    mounted = false;
  };
  t.after(() => {
    unmount();
    detachLoop(dev);
  });
  execFileSync('blockdev', ['--setro', dev]);
  execFileSync('mount', ['-o', 'ro,noload', dev, mnt]);
  mounted = true;
  return { dev, unmount };
}
