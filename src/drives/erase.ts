import { constants } from 'node:fs';
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { list as listDrives } from 'drivelist';
import { isReadOnly, lsblk, runCommand, setReadOnly, setReadWrite } from './blockdev.js';
import { seededRandom } from '../random.js';
import { readMounts } from './mountinfo.js';

/**
 * Erasing a customer's device after its job completed (the manifest's `eraseDevice`): every block overwritten
 * with zeros, then a sample read back from the device itself. Only ever a device the daemon mounted; the checks
 * here are the last word on *which* block device that is and whether nothing else uses it, and the kernel's
 * exclusive open (O_EXCL on a block device: refused while anything has it mounted or claimed) backs them up.
 */

/** Zeros are written this much at a time, from one buffer: large enough that the syscall count does not matter. */
const CHUNK = 8 << 20;
/** The read-back reads spans of this size: the first, the last, and seeded random ones. */
const SPAN = 1 << 20;
/** How many spans are read back (64 MiB); a device no larger than that is read back whole. */
const SPANS = 64;

/** Not erased, and why. `written` bytes were overwritten before it stopped: 0 means the device is untouched. */
export class NotErased extends Error {
  constructor(
    readonly device: string,
    readonly reason: string,
    readonly written = 0,
    options?: { cause?: unknown },
  ) {
    super(`${device} not erased: ${reason}`, options);
    this.name = 'NotErased';
  }
}

export interface EraseTarget {
  /** the block device to overwrite: the whole disk, or the partition alone when the disk has others */
  device: string;
  /** what was mounted (the partition), for the record */
  mounted: string;
  size: number;
  /** the kernel's name of the disk the device is on (`sdb`, `loop3`) */
  disk: string;
  /** the kernel's sequence number of the disk (new at every attach): that the device is still the one checked */
  diskseq?: string;
}

interface LsblkDevice {
  name: string;
  path: string;
  type: string;
  mountpoints?: Array<string | null> | null;
  mountpoint?: string | null;
  pkname: string | null;
}

/**
 * Which device erasing `mounted` (a partition or whole device the daemon mounted at `ourMountpoint`) means, once
 * every check passes; otherwise NotErased with the reason. Called while the daemon's own mount is still in place,
 * so the device cannot have been swapped for another meanwhile.
 *
 * - A partition that is its disk's only one: the whole disk, partition table included (what the customer shipped).
 * - A partition beside others: that partition alone. The others may be other jobs' drives, loaded or not yet;
 *   each job's own `eraseDevice` decides for its partition.
 * - A device without partitions (a USB stick formatted whole, a loop device): itself.
 *
 * Refused: a system disk (drivelist's isSystem), any part of the disk mounted other than at `ourMountpoint`, used
 * as swap, or held by another block device (LVM, RAID, dm-crypt), or anything but a disk, loop device or partition.
 */
export async function eraseTargetOf(mounted: string, ourMountpoint: string): Promise<EraseTarget> {
  const [devices, drives, mounts, swaps] = await Promise.all([
    lsblk<LsblkDevice>('NAME,PATH,TYPE,MOUNTPOINTS,PKNAME'),
    listDrives().catch(() => []),
    readMounts(),
    readFile('/proc/swaps', 'utf8').catch(() => ''),
  ]);
  const self = devices.find((d) => d.path === mounted);
  if (!self) throw new NotErased(mounted, 'the device is no longer there');
  let disk: LsblkDevice;
  if (self.type === 'part' && self.pkname) {
    const parent = devices.find((d) => d.name === self.pkname);
    if (!parent) throw new NotErased(mounted, `its disk ${self.pkname} is not listed by lsblk`);
    disk = parent;
  } else if (self.type === 'disk' || self.type === 'loop') {
    disk = self;
  } else {
    throw new NotErased(mounted, `it is a ${self.type} device, not a disk, loop device or partition`);
  }
  if (disk.type !== 'disk' && disk.type !== 'loop') throw new NotErased(mounted, `it sits on a ${disk.type} device ${disk.path}`);
  if (drives.some((d) => d.isSystem && d.device === disk.path)) throw new NotErased(mounted, `${disk.path} is a system disk`);

  // Everything on the disk: the disk, its partitions, and anything stacked on them.
  const members = new Map<string, LsblkDevice>([[disk.name, disk]]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of devices) {
      if (members.has(d.name) || !d.pkname || !members.has(d.pkname)) continue;
      members.set(d.name, d);
      grew = true;
    }
  }
  const partitions = [...members.values()].filter((d) => d.type === 'part');
  for (const d of members.values()) {
    if (d !== disk && d.type !== 'part') throw new NotErased(mounted, `${d.path} (${d.type}) is built on the disk`);
    const holders = await readdir(`/sys/class/block/${d.name}/holders`).catch(() => []);
    if (holders.length > 0) throw new NotErased(mounted, `${d.path} is held by ${holders.map((h) => `/dev/${h}`).join(', ')}`);
    if (swaps.split('\n').some((l) => l.split(/\s+/)[0] === d.path)) throw new NotErased(mounted, `${d.path} is in use as swap`);
    const lsblkMounts = (d.mountpoints ?? [d.mountpoint ?? null]).filter((m): m is string => !!m);
    const kernelMounts = mounts.filter((m) => m.source === d.path).map((m) => m.mountpoint);
    const foreign = [...new Set([...lsblkMounts, ...kernelMounts])].filter((m) => !(d.path === mounted && m === ourMountpoint));
    if (foreign.length > 0) throw new NotErased(mounted, `${d.path} is mounted at ${foreign.join(', ')}, not by the station for this job`);
  }
  const device = self === disk || partitions.length === 1 ? disk.path : self.path;
  const size = Number((await runCommand('blockdev', ['--getsize64', device])).stdout.trim());
  if (!Number.isSafeInteger(size) || size <= 0) throw new NotErased(mounted, `${device} reports no size`);
  const diskseq = await diskseqOf(disk.name);
  return { device, mounted, size, disk: disk.name, ...(diskseq !== undefined && { diskseq }) };
}

/** Where the device and its partitions are mounted (lsblk lists a device's partitions with it). */
async function mountsOn(device: string): Promise<string[]> {
  const devices = await lsblk<{ path: string; mountpoints?: Array<string | null> | null }>('PATH,MOUNTPOINTS', device);
  return devices.flatMap((d) => (d.mountpoints ?? []).filter((m): m is string => !!m).map((m) => `${d.path} at ${m}`));
}

async function diskseqOf(name: string): Promise<string | undefined> {
  return (await readFile(`/sys/class/block/${name}/diskseq`, 'utf8').catch(() => undefined))?.trim();
}

export interface EraseOptions {
  /** aborted: stop between two writes (the station is stopping, the drive was pulled) */
  signal?: AbortSignal;
  /** told after every chunk written */
  onBytes?: (n: number) => void;
  /** picks the random spans read back: the same seed reads the same spans */
  seed: string;
}

export interface Erased {
  device: string;
  size: number;
  /** bytes read back and found zero */
  sampled: number;
}

/**
 * Overwrites all of `target.device` with zeros and reads a sample back. The caller must have unmounted it.
 * Clears the device's read-only flag first (the daemon set it before mounting). Throws NotErased, with how many
 * bytes were written, when anything stops it: it never returns unless every byte was written, synced, and the
 * sample read back as zeros.
 */
export async function eraseDevice(target: EraseTarget, opts: EraseOptions): Promise<Erased> {
  const { device, size } = target;
  if (target.diskseq !== undefined && (await diskseqOf(target.disk)) !== target.diskseq) {
    throw new NotErased(device, 'the device was replaced since it was checked (its disk sequence number changed)');
  }
  if (opts.signal?.aborted) throw new NotErased(device, `erase interrupted: ${reason(opts.signal)}`);
  // Mounted again since the checks? Said before the read-only flag is touched (the exclusive open below comes after
  // clearing it, as a read-only device cannot be opened for writing).
  const again = await mountsOn(device);
  if (again.length > 0) throw new NotErased(device, `the device is mounted (${again.join(', ')})`);
  const wasReadOnly = await isReadOnly(device);
  if (wasReadOnly) {
    await setReadWrite(device);
    if (await isReadOnly(device)) throw new NotErased(device, 'the device stays read-only (write-protected?)');
  }
  let fh: FileHandle;
  try {
    // Exclusive, and read-write in one descriptor: nothing can mount or claim the device until the read-back ends.
    fh = await open(device, constants.O_RDWR | constants.O_EXCL);
  } catch (err) {
    if (wasReadOnly) await setReadOnly(device).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EBUSY' ? 'the device is in use (mounted or held by another program)' : `cannot open it: ${(err as Error).message}`;
    throw new NotErased(device, why, 0, { cause: err });
  }
  let written = 0;
  try {
    const zeros = Buffer.alloc(CHUNK);
    while (written < size) {
      if (opts.signal?.aborted) throw new NotErased(device, `erase interrupted: ${reason(opts.signal)}`, written);
      const n = Math.min(CHUNK, size - written);
      const { bytesWritten } = await fh.write(zeros, 0, n, written).catch((err: unknown) => {
        throw new NotErased(device, `erase interrupted: writing at byte ${written} failed: ${(err as Error).message}`, written, { cause: err });
      });
      if (bytesWritten === 0) throw new NotErased(device, `erase interrupted: the device took no more bytes at byte ${written}`, written);
      written += bytesWritten;
      opts.onBytes?.(bytesWritten);
    }
    await fh.sync().catch((err: unknown) => {
      throw new NotErased(device, `the zeros could not be synced to the device: ${(err as Error).message}`, written, { cause: err });
    });
    // Drop the device's page cache, so the read-back comes from the device and not from what was just written.
    await runCommand('blockdev', ['--flushbufs', device]);
    const sampled = await readBack(fh, device, size, opts.seed, written);
    return { device, size, sampled };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads the first and last spans and seeded random ones (the whole device when small); each must be all zeros. */
async function readBack(fh: FileHandle, device: string, size: number, seed: string, written: number): Promise<number> {
  const spans = sampleSpans(size, seed);
  const buf = Buffer.alloc(SPAN);
  const zeros = Buffer.alloc(SPAN);
  let sampled = 0;
  for (const [start, length] of spans) {
    for (let pos = start; pos < start + length; ) {
      const want = Math.min(SPAN, start + length - pos);
      const { bytesRead } = await fh.read(buf, 0, want, pos).catch((err: unknown) => {
        throw new NotErased(device, `reading back at byte ${pos} failed: ${(err as Error).message}`, written, { cause: err });
      });
      if (bytesRead === 0) throw new NotErased(device, `reading back at byte ${pos} found the device's end early`, written);
      if (!buf.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) {
        const at = pos + buf.subarray(0, bytesRead).findIndex((b) => b !== 0);
        throw new NotErased(device, `read back a non-zero byte at offset ${at} after writing zeros`, written);
      }
      pos += bytesRead;
      sampled += bytesRead;
    }
  }
  return sampled;
}

/** [start, length] spans to read back, sorted, not overlapping. Exported for its test. */
export function sampleSpans(size: number, seed: string): Array<[number, number]> {
  if (size <= SPANS * SPAN) return [[0, size]];
  const slots = Math.floor(size / SPAN); // whole spans; the last span is aligned to the end instead
  const chosen = new Set<number>([0]);
  const random = seededRandom(hashSeed(seed));
  while (chosen.size < SPANS - 1) chosen.add(1 + Math.floor(random() * (slots - 1)));
  const spans: Array<[number, number]> = [...chosen].sort((a, b) => a - b).map((i) => [i * SPAN, SPAN]);
  const last = size - SPAN;
  // The last span, unless a chosen one already reaches the end or overlaps it.
  const prev = spans[spans.length - 1]!;
  if (prev[0] + prev[1] > last) prev[1] = size - prev[0];
  else spans.push([last, SPAN]);
  return spans;
}

function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function reason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : signal.reason instanceof Error ? signal.reason.message : 'stopped';
}
