import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, realpath, rmdir } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe } from '../errors.js';
import {
  AmbiguousFilesystem,
  CommandFailed,
  isReadOnly,
  probeFilesystem,
  runCommand,
  serialOf,
  setReadOnly,
  setReadWrite,
} from './blockdev.js';
import { isUnder, readMounts } from './mountinfo.js';

/**
 * Mounting a customer's drive so that nothing can write to it: the block device is made read-only in the
 * kernel before anything reads it, and only then is its file system probed and mounted read-only, without
 * set-user-ID programs, device files or execution. Which driver mounts what is what was measured on this
 * kernel (docs: shared notes, "Drives, mounts and systemd"): it has ext2/3/4 and XFS built in, no vfat, no
 * module loading, and FUSE for the rest.
 */

/** The contract's file systems (NTFS, ext2/3/4, FAT32, HFS+), and XFS, which this kernel also mounts. */
export const SUPPORTED = ['ext2', 'ext3', 'ext4', 'vfat', 'ntfs', 'hfsplus', 'xfs'] as const;
export type SupportedType = (typeof SUPPORTED)[number];

/** The device cannot be loaded: no or an unsupported file system, or the mount failed. The job's DeviceError. */
export class MountRefused extends Error {
  constructor(
    readonly device: string,
    /** short, for the job's record: `unsupported file system exfat` */
    readonly reason: string,
    /** blkid's TYPE, when there was one */
    readonly fsType?: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot mount ${device}: ${reason}`, options);
    this.name = 'MountRefused';
  }
}

export interface MountedDrive {
  device: string;
  /** absolute, canonical (as /proc/self/mountinfo shows it) */
  mountpoint: string;
  /** blkid's TYPE */
  fsType: string;
  label?: string;
  serial?: string;
  /** what the job must know about how the drive was read */
  notes: string[];
  /** Unmounts, removes the mount point, and gives the device back its read-only flag as it was found. */
  unmount(): Promise<void>;
}

interface Driver {
  /** `mount -t` */
  type: string;
  options: string[];
  /** the option that skips a journal or log replay (which a read-only device cannot take), and what it costs */
  skipReplay?: { option: string; note: string };
  /** a FUSE driver: its program (checked before mounting) and Debian package */
  fuse?: { program: string; pkg: string };
  /** pass `fsname=DEVICE`, so that mountinfo shows the device as the mount's source (ntfs-3g does so itself and
   * refuses the option) */
  fsname?: boolean;
  notes?: (probe: { label?: string }) => string[];
}

const SAFE = ['ro', 'nosuid', 'nodev', 'noexec'];

const EXT: Driver = {
  // ext2 refuses `noload` under `-t ext2`; the ext4 driver reads ext2 and ext3 and takes it.
  type: 'ext4',
  options: SAFE,
  skipReplay: {
    option: 'noload',
    note: "the file system's journal was not replayed: files written only to the journal are not visible",
  },
};

/** How each supported type is mounted, or why it cannot be here. */
const DRIVERS: Record<SupportedType, Driver | { unsupported: string }> = {
  ext2: EXT,
  ext3: EXT,
  ext4: EXT,
  xfs: {
    type: 'xfs',
    options: SAFE,
    // XFS rejects `noload`.
    skipReplay: {
      option: 'norecovery',
      note: "the file system's log was not replayed: files written only to the log are not visible",
    },
  },
  vfat: {
    // No vfat in this kernel.
    type: 'fuse.fusefat',
    options: [...SAFE, 'allow_other'],
    fuse: { program: 'fusefat', pkg: 'fusefat' },
    fsname: true,
    notes: ({ label }) => [
      'FAT is read through fusefat: names stored only in 8.3 form appear in upper case, a short name with ' +
        'non-ASCII characters cannot be opened, and modification times read one month late',
      ...(label ? [`the volume label "${label}" appears as an empty file of that name at the root`] : []),
    ],
  },
  ntfs: { type: 'ntfs-3g', options: SAFE, fuse: { program: 'ntfs-3g', pkg: 'ntfs-3g' } },
  // Not in Debian 12 main; Debian's `hfsplus` tool corrupted a volume header when it opened one: never use it.
  hfsplus: { unsupported: 'HFS+ is unsupported here: this station has no working HFS+ driver' },
};

function driverFor(type: string): Driver | { unsupported: string } {
  return (SUPPORTED as readonly string[]).includes(type)
    ? DRIVERS[type as SupportedType]
    : { unsupported: `unsupported file system ${type}` };
}

/**
 * Mounts `device` read-only under `runDir/mnt/<device name>-<random>` (0700). The device is set read-only
 * first and stays so until `unmount()`, which restores the flag only if this call changed it. Throws
 * MountRefused when the drive cannot be loaded; other errors (a missing tool, not root) are the station's.
 */
export async function mountReadOnly(device: string, runDir: string): Promise<MountedDrive> {
  // Setting the flag under a read-write mount would make that file system fail its writes: leave such a device
  // alone. (A mount shows its device by the name it was mounted with; the daemon passes lsblk's names.)
  const already = (await readMounts()).find((m) => m.source === device);
  if (already) throw new Error(`${device} is already mounted at ${already.mountpoint}: not mounting it again`);
  const wasReadOnly = await isReadOnly(device);
  if (!wasReadOnly) {
    await setReadOnly(device);
    if (!(await isReadOnly(device))) throw new Error(`${device} stays writable after blockdev --setro: not mounting it`);
  }
  let mountpoint: string | undefined;
  const undo = async () => {
    if (mountpoint) await rmdir(mountpoint).catch(() => undefined);
    if (!wasReadOnly) await setReadWrite(device);
  };
  try {
    const probe = await probeFilesystem(device).catch((err: unknown) => {
      if (!(err instanceof AmbiguousFilesystem)) throw err;
      const which = err.candidates.length ? ` (${err.candidates.join(', ')})` : '';
      const reason = `signatures of more than one file system on the device${which}: which one is meant cannot be told`;
      throw new MountRefused(device, reason, undefined, { cause: err });
    });
    if (!probe.type) throw new MountRefused(device, 'no file system found on the device');
    const driver = driverFor(probe.type);
    if ('unsupported' in driver) throw new MountRefused(device, driver.unsupported, probe.type);
    if (driver.fuse) await requireProgram(driver.fuse.program, driver.fuse.pkg);

    const mnt = join(runDir, 'mnt');
    await mkdir(mnt, { recursive: true, mode: 0o700 });
    mountpoint = await mkdtemp(join(await realpath(mnt), `${basename(device)}-`));
    const notes = await mountWith(driver, device, mountpoint, probe.type);
    if (driver.notes) notes.push(...driver.notes(probe));
    const serial = await serialOf(device).catch(() => undefined);
    return drive({ device, mountpoint, fsType: probe.type, probe, serial, notes, fuse: !!driver.fuse, restoreRw: !wasReadOnly });
  } catch (err) {
    await undo().catch(() => undefined);
    throw err;
  }
}

/** Mounts; when the plain read-only mount fails, tries once more without replaying the journal or log. */
async function mountWith(driver: Driver, device: string, mountpoint: string, fsType: string): Promise<string[]> {
  const options = (extra: string[]) => [...driver.options, ...extra, ...(driver.fsname ? [`fsname=${device}`] : [])].join(',');
  const mount = (extra: string[]) => runCommand('mount', ['-t', driver.type, '-o', options(extra), device, mountpoint]);
  try {
    await mount([]);
    return [];
  } catch (first) {
    if (!(first instanceof CommandFailed)) throw first;
    // On a read-only device a dirty ext4 fails with "cannot mount read-only" (the hint to use noload is only in
    // the kernel log) and a dirty XFS likewise. The option skips nothing but the replay: if the mount works with
    // it, the replay was what failed.
    if (driver.skipReplay) {
      try {
        await mount([driver.skipReplay.option]);
        return [driver.skipReplay.note];
      } catch {
        // the replay was not the problem: report the plain mount's failure
      }
    }
    const reason = `the ${fsType} file system could not be mounted: ${mountMessage(first, mountpoint)}`;
    throw new MountRefused(device, reason, fsType, { cause: first });
  }
}

/** mount's own words, without the mount point's name and its "dmesg(1) may have more information" advice. */
function mountMessage(err: CommandFailed, mountpoint: string): string {
  const lines = err.stderr
    .split('\n')
    .map((l) => l.trim().replace(`mount: ${mountpoint}: `, ''))
    .filter((l) => l && !l.startsWith('dmesg('));
  return lines.join(' ') || err.message;
}

async function requireProgram(program: string, pkg: string): Promise<void> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (await access(join(dir, program), constants.X_OK).then(() => true, () => false)) return;
  }
  throw new Error(`cannot mount this drive: ${program} is not installed (Debian package ${pkg})`);
}

function drive(m: {
  device: string;
  mountpoint: string;
  fsType: string;
  probe: { label?: string };
  serial: string | undefined;
  notes: string[];
  fuse: boolean;
  restoreRw: boolean;
}): MountedDrive {
  let done = false;
  const result: MountedDrive = {
    device: m.device,
    mountpoint: m.mountpoint,
    fsType: m.fsType,
    notes: m.notes,
    async unmount() {
      if (done) return;
      await unmountOne(m.mountpoint, m.fuse);
      await rmdir(m.mountpoint);
      if (m.restoreRw) await setReadWrite(m.device);
      done = true;
    },
  };
  if (m.probe.label !== undefined) result.label = m.probe.label;
  if (m.serial !== undefined) result.serial = m.serial;
  return result;
}

/**
 * umount, and for FUSE `fusermount -u` when umount fails. Then, for FUSE, wait (5 s at most) for the driver
 * process to exit, so that "unmounted" means nothing holds the drive any more: the kernel waits for a `fuseblk`
 * driver (ntfs-3g) but not for a plain `fuse` one (fusefat). fusefat had always exited already in trials here;
 * nothing promises it.
 */
async function unmountOne(mountpoint: string, fuse: boolean): Promise<void> {
  const daemons = fuse ? await processesNaming(mountpoint) : [];
  try {
    await runCommand('umount', [mountpoint]);
  } catch (err) {
    if (!fuse) throw err;
    // FUSE 2's helper or FUSE 3's, whichever is there; umount's error is the one worth reporting.
    const fusermount = (helper: string) => runCommand(helper, ['-u', mountpoint]).then(() => true, () => false);
    if (!(await fusermount('fusermount')) && !(await fusermount('fusermount3'))) throw err;
  }
  for (let waited = 0; waited < 5000; waited += 20) {
    if ((await Promise.all(daemons.map(isRunning))).every((r) => !r)) return;
    await sleep(20);
  }
}

/** Processes with `path` as one of their arguments: a FUSE driver keeps its mount point in its command line. */
async function processesNaming(path: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (args.split('\0').includes(path)) pids.push(Number(entry));
  }
  return pids;
}

/** A zombie (exited, not yet reaped) has an empty command line: it no longer holds the device. */
async function isRunning(pid: number): Promise<boolean> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) !== '';
}

/**
 * After a crash: unmounts everything mounted under `runDir/mnt` (deepest first) and removes the empty mount
 * points. Returns the mount points it unmounted. Devices keep their read-only flag: whether this station set it
 * is not known any more, and read-only is the safe side. Directories are only ever `rmdir`ed: one that is not
 * empty is not removed.
 */
export async function unmountStale(runDir: string): Promise<string[]> {
  let mnt: string;
  try {
    mnt = await realpath(join(runDir, 'mnt'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale = (await readMounts())
    .filter((m) => m.mountpoint !== mnt && isUnder(m.mountpoint, mnt))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
  const unmounted: string[] = [];
  const failures: string[] = [];
  for (const m of stale) {
    try {
      await unmountOne(m.mountpoint, m.fsType === 'fuse' || m.fsType.startsWith('fuse.') || m.fsType === 'fuseblk');
      unmounted.push(m.mountpoint);
    } catch (err) {
      failures.push(`${m.mountpoint}: ${describe(err)}`);
    }
  }
  for (const entry of await readdir(mnt)) await rmdir(join(mnt, entry)).catch(() => undefined);
  if (failures.length > 0) throw new Error(`could not unmount what a previous run left under ${mnt}: ${failures.join('; ')}`);
  return unmounted;
}
