import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { watch as chokidar, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { isUnder, readMounts } from './mountinfo.js';
import { listPartitions } from './partitions.js';

/**
 * A drive as the station sees it arrive. Its `id` names it for as long as it is attached: the path for a
 * directory or a mount, the device for an unmounted partition.
 */
export type Drive =
  | { id: string; kind: 'directory'; path: string }
  | { id: string; kind: 'mount'; path: string; device: string; fsType: string }
  | { id: string; kind: 'partition'; device: string };

export interface WatchOptions {
  mountRoots: string[];
  pollIntervalMs: number;
  /** watch for unmounted partitions too (the daemon mounts them) */
  partitions: boolean;
  /** the station's own mount folder: what it mounts there is not a new drive */
  ownMounts: string;
  log: Logger;
}

/**
 * Notices drives: a file system mounted at or under a mount root, a directory appearing directly under one
 * (an automounter's or a technician's copy), and, with `partitions`, a partition nobody has mounted. Mounts and
 * partitions are polled (inotify does not see a mount); chokidar reacts to a new directory at once. What is
 * there when the watcher starts counts as attached: after a restart, a drive still plugged in is resumed.
 *
 * Emits `attached` and `detached` with a `Drive`.
 */
export class DriveWatcher extends EventEmitter<{ attached: [Drive]; detached: [Drive] }> {
  private readonly roots: string[];
  private readonly present = new Map<string, Drive>();
  private chokidar?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private firstPoll = true;
  private polling = false;

  constructor(private readonly opts: WatchOptions) {
    super();
    this.roots = opts.mountRoots.map((r) => resolve(r));
  }

  /** Resolves once every source is watching: a drive that arrives after this is not missed. */
  async start(): Promise<void> {
    await this.poll();
    this.chokidar = chokidar(this.roots, { depth: 0, ignoreInitial: false, persistent: true, followSymlinks: false });
    this.chokidar.on('addDir', (path) => {
      if (this.roots.includes(dirname(path))) this.arrive({ id: path, kind: 'directory', path });
    });
    this.chokidar.on('unlinkDir', (path) => this.leave(path));
    this.chokidar.on('error', (err) => this.opts.log.warn({ err: (err as Error).message }, 'watching the mount roots failed'));
    await new Promise<void>((resolve) => this.chokidar!.once('ready', resolve));
    this.timer = setInterval(() => void this.poll(), this.opts.pollIntervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.chokidar?.close();
  }

  /** The drive with this id, while it is attached. */
  get(id: string): Drive | undefined {
    return this.present.get(id);
  }

  private arrive(drive: Drive): void {
    const known = this.present.get(drive.id);
    // A directory that becomes a mount point stays one drive: the mount, which is what gets read.
    if (known && !(known.kind === 'directory' && drive.kind === 'mount')) return;
    this.present.set(drive.id, drive);
    this.emit('attached', drive);
  }

  private leave(id: string): void {
    const drive = this.present.get(id);
    if (!drive) return;
    this.present.delete(id);
    this.emit('detached', drive);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.pollMounts();
      await this.pollDirectories();
      if (this.opts.partitions) await this.pollPartitions();
      this.firstPoll = false;
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'looking for drives failed');
    } finally {
      this.polling = false;
    }
  }

  private async pollMounts(): Promise<void> {
    const mounts = (await readMounts()).filter(
      (m) => this.roots.some((root) => isUnder(m.mountpoint, root)) && !isUnder(m.mountpoint, this.opts.ownMounts),
    );
    const now = new Set(mounts.map((m) => m.mountpoint));
    for (const m of mounts) this.arrive({ id: m.mountpoint, kind: 'mount', path: m.mountpoint, device: m.source, fsType: m.fsType });
    for (const [id, drive] of this.present) {
      if (drive.kind === 'mount' && !now.has(id)) {
        // Unmounted: the directory under the root may remain, but the drive has gone.
        this.leave(id);
      }
    }
  }

  /** inotify can miss a directory (a rename racing the watch's start, an overflowed queue): a scan catches it. */
  private async pollDirectories(): Promise<void> {
    const now = new Set<string>();
    for (const root of this.roots) {
      const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) now.add(join(root, e.name));
    }
    for (const path of now) this.arrive({ id: path, kind: 'directory', path });
    for (const [id, drive] of this.present) if (drive.kind === 'directory' && !now.has(id)) this.leave(id);
  }

  private async pollPartitions(): Promise<void> {
    const parts = await listPartitions();
    const now = new Set(parts.map((p) => p.device));
    for (const p of parts) {
      if (this.present.has(p.device) || p.mounted) continue;
      // At start-up only what a technician could have plugged in counts: removable disks and file-backed loops.
      if (this.firstPoll && !p.removable && !p.loop) continue;
      this.arrive({ id: p.device, kind: 'partition', device: p.device });
    }
    for (const [id, drive] of this.present) if (drive.kind === 'partition' && !now.has(id)) this.leave(id);
  }
}
