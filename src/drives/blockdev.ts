import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';

/**
 * What the station asks of a block device before it mounts one: its file system, its serial number, and its
 * kernel read-only flag. Every question goes to a util-linux command run without a shell (device names come
 * from the system, but a shell would still be one more thing to get wrong).
 */

const execFileAsync = promisify(execFile);

/** A command that could not be run or exited non-zero; carries the command line and what it said on stderr. */
export class CommandFailed extends Error {
  constructor(
    readonly argv: readonly string[],
    /** the exit status, or undefined when it did not run (ENOENT) or was killed */
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly stdout: string,
    options?: { cause?: unknown },
  ) {
    const why = exitCode !== undefined ? `exit ${exitCode}` : describeSpawnFailure(options?.cause);
    const said = stderr.trim().replace(/\s*\n\s*/g, ' / ');
    super(`${argv.join(' ')} failed (${why})${said ? `: ${said}` : ''}`, options);
    this.name = 'CommandFailed';
  }
}

function describeSpawnFailure(cause: unknown): string {
  const e = cause as { code?: unknown; signal?: unknown; killed?: boolean } | undefined;
  if (e?.killed && e.signal) return `killed by ${String(e.signal)} after the time limit`;
  if (e?.signal) return `killed by ${String(e.signal)}`;
  if (e?.code === 'ENOENT') return 'not installed';
  return typeof e?.code === 'string' ? e.code : 'did not run';
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/**
 * Runs `file args…` and returns its output; throws CommandFailed on a non-zero exit, unless `okCodes` lists it
 * (blkid's 2 means "nothing found", not a failure). LC_ALL=C keeps the messages that end up in a job's record
 * in one language. A mount of a sick drive can hang in the kernel or in a FUSE driver: hence the time limit.
 */
export async function runCommand(
  file: string,
  args: readonly string[],
  options: { okCodes?: readonly number[]; timeoutMs?: number } = {},
): Promise<CommandOutput & { exitCode: number }> {
  const argv = [file, ...args];
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 1 << 20,
    });
    return { stdout, stderr, exitCode: 0 };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; killed?: boolean };
    const exitCode = typeof e.code === 'number' && !e.killed ? e.code : undefined;
    const stdout = e.stdout ?? '';
    const stderr = e.stderr ?? '';
    if (exitCode !== undefined && options.okCodes?.includes(exitCode)) return { stdout, stderr, exitCode };
    throw new CommandFailed(argv, exitCode, stderr, stdout, { cause: err });
  }
}

/** lsblk's block devices as JSON (`-J -l`, keys the lower-cased column names): all of them, or `device` and its partitions. */
export async function lsblk<T>(columns: string, device?: string): Promise<T[]> {
  const { stdout } = await runCommand('lsblk', ['-J', '-l', '-o', columns, ...(device === undefined ? [] : [device])]);
  return (JSON.parse(stdout) as { blockdevices: T[] }).blockdevices;
}

export interface Probe {
  /** blkid's TYPE: `ext4`, `vfat`, `ntfs`, `exfat`…; undefined when no file system was found */
  type?: string;
  label?: string;
  uuid?: string;
}

/** blkid found signatures of more than one file system: which one is meant cannot be known. */
export class AmbiguousFilesystem extends Error {
  constructor(
    readonly device: string,
    /** e.g. `vfat FAT16`, `ext4 1.0` */
    readonly candidates: string[],
  ) {
    super(
      `${device} holds signatures of more than one file system${candidates.length ? ` (${candidates.join(', ')})` : ''}: ` +
        'which one is the drive cannot be told',
    );
    this.name = 'AmbiguousFilesystem';
  }
}

/**
 * The file system on `device`, read from the device itself (`-p`: no cache, no udev, which this machine does not
 * run), file systems only (`-u filesystem`: an exFAT volume also looks like a partition table). The decision is
 * made on TYPE alone. Exit 0: found; 2: nothing; 8: ambiguous, thrown as AmbiguousFilesystem.
 *
 * `-o udev` rather than `-o export`: both print the same keys, but export mangles a label's non-ASCII bytes into
 * `M-` sequences that cannot be decoded, while udev's `ID_FS_LABEL_ENC` keeps UTF-8 and escapes the rest as \xNN.
 */
export async function probeFilesystem(device: string): Promise<Probe> {
  // blkid also answers 2 for a path that does not exist: say so instead of "no file system".
  await stat(device);
  const argv = ['-p', '-u', 'filesystem', '-o', 'udev', '-s', 'TYPE', '-s', 'LABEL', '-s', 'UUID', device];
  const { stdout, exitCode } = await runCommand('blkid', argv, { okCodes: [2, 8] });
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  if (exitCode === 8) {
    // ID_FS_AMBIVALENT=filesystem:vfat:FAT16 filesystem:ext4:1.0
    const candidates = (values.get('ID_FS_AMBIVALENT') ?? '')
      .split(' ')
      .filter(Boolean)
      .map((c) => c.split(':').slice(1).join(' '));
    throw new AmbiguousFilesystem(device, candidates);
  }
  if (exitCode === 2) return {};
  const probe: Probe = {};
  const type = values.get('ID_FS_TYPE');
  const label = values.get('ID_FS_LABEL_ENC');
  const uuid = values.get('ID_FS_UUID_ENC') ?? values.get('ID_FS_UUID');
  if (type) probe.type = type;
  if (label) probe.label = decodeUdevString(label);
  if (uuid) probe.uuid = decodeUdevString(uuid);
  return probe;
}

/** Undoes blkid's `\xNN` escapes; the bytes are UTF-8 (an invalid byte becomes U+FFFD). */
function decodeUdevString(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && raw[i + 1] === 0x78 && i + 3 < raw.length) {
      const hex = raw.subarray(i + 2, i + 4).toString('latin1');
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 3;
        continue;
      }
    }
    bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The serial number of the drive `device` is on, where the system knows one: a partition asks its disk. lsblk
 * first (it has udev's answer where udev runs); without udev, the kernel's attributes: `device/serial` (NVMe,
 * MMC), `serial` (virtio), and for SCSI and USB disks the Unit Serial Number VPD page (0x80), which is where
 * udev itself gets a USB drive's serial. Loop devices have none.
 */
export async function serialOf(device: string): Promise<string | undefined> {
  const name = basename(device);
  if (name.startsWith('loop')) return undefined;
  const parent = (await runCommand('lsblk', ['-dno', 'PKNAME', device]).catch(() => undefined))?.stdout.trim();
  const disk = parent || name;
  const fromLsblk = (await runCommand('lsblk', ['-dno', 'SERIAL', `/dev/${disk}`]).catch(() => undefined))?.stdout.trim();
  if (fromLsblk) return fromLsblk;
  for (const attribute of ['device/serial', 'serial']) {
    const text = await readFile(`/sys/block/${disk}/${attribute}`, 'utf8').catch(() => '');
    if (text.trim()) return text.trim();
  }
  return vpdSerial(await readFile(`/sys/block/${disk}/device/vpd_pg80`).catch(() => undefined));
}

/** VPD page 0x80: byte 1 is the page code, bytes 2–3 the length of the ASCII serial that follows. */
function vpdSerial(page: Buffer | undefined): string | undefined {
  if (!page || page.length < 4 || page[1] !== 0x80) return undefined;
  const serial = page
    .subarray(4, 4 + page.readUInt16BE(2))
    .toString('latin1')
    .replace(/\0/g, '')
    .trim();
  return serial || undefined;
}

/** The kernel's read-only flag on the device (`blockdev --getro`). */
export async function isReadOnly(device: string): Promise<boolean> {
  const { stdout } = await runCommand('blockdev', ['--getro', device]);
  return stdout.trim() === '1';
}

/**
 * Makes the kernel refuse every write to the device, from any file system or process. `mount -o ro` alone is
 * not enough: ext4 replays a dirty journal onto a writable device even when mounted read-only.
 */
export async function setReadOnly(device: string): Promise<void> {
  await runCommand('blockdev', ['--setro', device]);
}

/** Clears the flag. It outlives the device's use: on /dev/loopN it applies to the next image attached there. */
export async function setReadWrite(device: string): Promise<void> {
  await runCommand('blockdev', ['--setrw', device]);
}
