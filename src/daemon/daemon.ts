import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { describe, StationError } from '../errors.js';
import { serialOf } from '../drives/blockdev.js';
import { MountRefused, mountReadOnly, unmountStale, type MountedDrive } from '../drives/mount.js';
import { listPartitions } from '../drives/partitions.js';
import { DriveWatcher, type Drive } from '../drives/watch.js';
import type { JobStore } from '../jobs/store.js';
import type { Manifest } from '../manifest/types.js';
import { markDeviceError, readSignature } from '../load/admit.js';
import { loadDevice, type Station } from '../load/loader.js';
import { Progress } from '../load/progress.js';
import { closeStation, openStation } from '../load/station.js';
import { abortAbandonedUploads } from '../load/sweep.js';
import { Outbox } from '../mail/outbox.js';
import { MailSender } from '../mail/sender.js';
import { StationMetrics } from '../metrics.js';
import { startScreen, type ScreenServer } from '../screen/server.js';
import { describeDrive, driveJson, progressMoves, safeToUnplug, type DriveState } from './drive-state.js';
import { eraseAfterLoad } from './erase-drive.js';
import type { SystemdNotifier } from './notify.js';
import { serveStatus } from './status-server.js';

/** A load that has not moved forward for this long is stuck: the watchdog stops being fed and systemd restarts us. */
const STALL_MS = 5 * 60_000;
/** How long a shutdown waits for in-flight requests to settle. */
const STOP_WAIT_MS = 60_000;
/** A new directory settles this long before it is read: a copy or an automount may still be under way. */
const SETTLE_MS = 1000;
/** How long a shutdown waits for an e-mail being sent; one cut short is tried again after the next start. */
const MAIL_STOP_WAIT_MS = 10_000;

export const runDir = (config: Config) => join(config.dataDir, 'run');
export const socketPath = (config: Config) => join(runDir(config), 'station.sock');

/**
 * The station as a service: watches for drives, loads each with the same code as `station load`, tells the
 * technician when a drive can be unplugged, and resumes whatever a crash, a restart or a pulled cable stopped.
 */
export class Daemon {
  private readonly station: Station;
  private readonly watcher: DriveWatcher;
  /** delivers the outbox (notification e-mail) in the background; none without a mail section */
  private readonly mail?: MailSender;
  private readonly drives = new Map<string, DriveState>();
  private readonly tasks = new Set<Promise<void>>();
  /** jobs being loaded now, and by which drive: a second drive with the same SIGNATURE is refused */
  private readonly loadingJobs = new Map<string, string>();
  private server?: Server;
  /** Prometheus counters; served with the station screen */
  private readonly metrics = new StationMetrics();
  private screen?: ScreenServer;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** the start, awaited by a stop: a SIGTERM during it must not leave the watcher and timers it starts afterwards */
  private starting?: Promise<void>;

  constructor(
    private readonly config: Config,
    store: JobStore,
    private readonly log: Logger,
    private readonly notifier: SystemdNotifier,
  ) {
    this.station = openStation(store, config, log, this.metrics.hooks);
    // Reads the SMTP password now, so a missing password file stops the start with its name, not the first mail.
    if (config.mail) this.mail = new MailSender(store.db, config.mail, log, process.env);
    mkdirSync(join(runDir(config), 'mnt'), { recursive: true, mode: 0o700 });
    this.watcher = new DriveWatcher({
      mountRoots: config.drives.mountRoots,
      pollIntervalMs: config.drives.pollIntervalMs,
      partitions: config.drives.autoMount,
      ownMounts: join(runDir(config), 'mnt'),
      log,
    });
  }

  start(): Promise<void> {
    this.starting ??= this.begin();
    return this.starting;
  }

  private async begin(): Promise<void> {
    const stale = await unmountStale(runDir(this.config));
    if (stale.length > 0) this.log.info({ mountpoints: stale }, 'unmounted what a previous run left mounted');
    const expired = this.station.store.expireOverdue();
    if (expired.length > 0) this.log.info({ jobs: expired }, 'jobs expired');
    const aborted = await abortAbandonedUploads(this.station.journalDb, this.station.s3, this.station.limit, this.log).catch((err) => {
      this.log.warn({ err: describe(err) }, 'could not sweep abandoned multipart uploads; will try at the next start');
      return 0;
    });
    this.server = await serveStatus(join(runDir(this.config), 'station.sock'), () => this.status());
    this.screen = await startScreen(this.config.screen, {
      log: this.log,
      metrics: this.metrics,
      station: this.station,
      store: this.station.store,
      drives: () => [...this.drives.values()],
      status: () => this.status(),
    });
    this.watcher.on('attached', (drive) => this.attached(drive));
    this.watcher.on('detached', (drive) => this.detached(drive));
    await this.watcher.start();
    this.timers.push(setInterval(() => this.feedWatchdog(), this.notifier.watchdogIntervalMs() ?? 10_000));
    this.timers.push(setInterval(() => void this.notifier.status(this.summary()), 5000));
    this.timers.push(setInterval(() => this.station.store.expireOverdue(), 3600_000));
    this.startMail();
    this.log.info({ mountRoots: this.config.drives.mountRoots, autoMount: this.config.drives.autoMount, abortedUploads: aborted }, 'station ready');
    await this.notifier.ready(this.summary());
  }

  /** SIGTERM: no new work, in-flight requests settled (within a bound), the journal flushed, everything unmounted. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Every step of a start is bounded (S3 timeouts, chokidar's first scan); one that failed ends the process anyway.
    await this.starting?.catch(() => undefined);
    this.log.info({ loading: this.loadingJobs.size }, 'stopping');
    await this.notifier.stopping();
    await this.watcher.stop();
    for (const s of this.drives.values()) s.controller.abort('the station is shutting down');
    const settled = Promise.all(this.tasks);
    const timedOut = await Promise.race([settled.then(() => false), sleep(STOP_WAIT_MS, undefined, { ref: false }).then(() => true)]);
    if (timedOut) this.log.warn('in-flight work did not settle in time; the journal keeps what S3 acknowledged');
    for (const t of this.timers) clearInterval(t);
    await this.screen?.close(); // the loads have settled: the screen has shown their last state
    if (this.mail) await Promise.race([this.mail.stop(), sleep(MAIL_STOP_WAIT_MS, undefined, { ref: false })]);
    await new Promise((r) => this.server?.close(r));
    await closeStation(this.station);
    this.log.info('stopped');
  }

  /** Said once at start: whether jobs that end tell anyone, and how much mail is waiting. */
  private startMail(): void {
    const mail = this.config.mail;
    if (!this.mail || !mail) {
      this.log.info('notification e-mail is off (no mail section in the config): jobs that end queue no e-mail');
      return;
    }
    const queued = new Outbox(this.station.store.db).queuedCount();
    this.log.info({ smtp: `${mail.smtp.host}:${mail.smtp.port}`, from: mail.from, queued }, 'notification e-mail on');
    this.mail.start();
  }

  status() {
    return {
      pid: process.pid,
      mountRoots: this.config.drives.mountRoots,
      autoMount: this.config.drives.autoMount,
      drives: [...this.drives.values()].map(driveJson),
    };
  }

  private summary(): string {
    const loading = [...this.drives.values()].filter((s) => s.stage === 'loading');
    if (loading.length === 0) return `idle; ${this.drives.size} drive(s) attached`;
    return loading.map((s) => `${s.jobId}: ${s.progress?.line() ?? ''}`).join('; ');
  }

  /** Fed only while the station is well: idle, or every load moving forward. */
  private feedWatchdog(): void {
    try {
      this.station.store.db.prepare('SELECT 1').get();
    } catch {
      return;
    }
    const now = Date.now();
    for (const s of this.drives.values()) {
      if (!progressMoves(s.stage) || !s.progress) continue;
      const moved = s.progress.doneBytes + s.progress.doneFiles;
      if (moved !== s.lastDoneBytes) {
        s.lastDoneBytes = moved;
        s.lastProgressAt = now;
      } else if (now - s.lastProgressAt > STALL_MS) {
        this.log.error({ jobId: s.jobId, drive: describeDrive(s.drive) }, 'a load has made no progress for 5 minutes; the watchdog is no longer fed');
        return;
      }
    }
    void this.notifier.watchdog();
  }

  private attached(drive: Drive): void {
    if (this.stopping) return;
    const known = this.drives.get(drive.id);
    // A drive pulled mid-erase keeps its card (the erase ends it 'erase-failed', or 'erased'): plugged back, seen anew.
    const again = known && ['removed', 'interrupted', 'erase-failed', 'erased'].includes(known.stage);
    if (known && !again && !(known.drive.kind === 'directory' && drive.kind === 'mount')) return;
    const state: DriveState = { drive, stage: 'waiting', since: Date.now(), controller: new AbortController(), lastProgressAt: Date.now(), lastDoneBytes: 0 };
    this.drives.set(drive.id, state);
    this.log.info({ drive: describeDrive(drive), kind: drive.kind }, 'drive attached');
    const earlier = known?.task ?? Promise.resolve();
    const task = earlier.then(() => this.handle(state)).finally(() => this.tasks.delete(task));
    state.task = task;
    this.tasks.add(task);
  }

  private detached(drive: Drive): void {
    const s = this.drives.get(drive.id);
    if (!s) return;
    if (s.stage === 'erasing') {
      // The erase stops at its next write and records itself as not done; the card stays to say so.
      s.controller.abort('the drive was removed during its erase');
      return;
    }
    if (!safeToUnplug(s.stage)) {
      this.log.warn({ drive: describeDrive(drive), jobId: s.jobId }, 'drive removed during its load: plug it back to resume');
      s.controller.abort('the drive was removed: plug it back to resume');
      this.move(s, 'removed', 'drive removed, plug it back to resume');
    } else {
      this.log.info({ drive: describeDrive(drive), jobId: s.jobId }, 'drive detached');
      this.drives.delete(drive.id);
    }
  }

  private move(s: DriveState, stage: DriveState['stage'], detail?: string): void {
    s.stage = stage;
    s.detail = detail;
    s.since = Date.now();
    this.log.info({ drive: describeDrive(s.drive), jobId: s.jobId, stage, detail }, `drive ${stage}`);
    void this.notifier.status(this.summary());
  }

  private async handle(s: DriveState): Promise<void> {
    let mounted: MountedDrive | undefined;
    try {
      const root = await this.rootOf(s, (m) => (mounted = m));
      if (root === undefined || s.controller.signal.aborted) return;
      s.root = root;
      const sig = await readSignature(root);
      const jobId = sig.state === 'ok' ? sig.jobId : undefined;
      if (jobId) s.jobId = jobId;
      const other = jobId && this.loadingJobs.get(jobId);
      if (jobId && other) {
        this.move(s, 'refused', `job ${jobId} is already loading from ${other}`);
        return;
      }
      if (jobId) this.loadingJobs.set(jobId, describeDrive(s.drive));
      try {
        await this.load(s, root, mounted);
      } finally {
        if (jobId && this.loadingJobs.get(jobId) === describeDrive(s.drive)) this.loadingJobs.delete(jobId);
      }
    } catch (err) {
      if (err instanceof MountRefused) await this.unmountable(s, err);
      else if (err instanceof StationError) this.move(s, 'refused', `${err.code}: ${err.message}`);
      else {
        this.log.error({ drive: describeDrive(s.drive), err: describe(err), stack: (err as Error).stack }, 'drive failed');
        this.move(s, 'refused', `internal error: ${describe(err)}`);
      }
    } finally {
      const m = mounted as MountedDrive | undefined;
      if (m) await m.unmount().catch((err) => this.log.warn({ device: m.device, err: describe(err) }, 'could not unmount'));
    }
  }

  /** Where the drive's files are: the path, or a read-only mount this daemon makes. */
  private async rootOf(s: DriveState, onMount: (m: MountedDrive) => void): Promise<string | undefined> {
    const d = s.drive;
    if (d.kind === 'mount') return d.path;
    if (d.kind === 'directory') {
      await sleep(SETTLE_MS);
      const now = this.watcher.get(d.id);
      // It became a mount point meanwhile: the mount is the drive, handled as such.
      return now && now.kind === 'directory' ? d.path : undefined;
    }
    // A partition: let an automounter take it first, if the machine has one.
    await sleep(this.config.drives.pollIntervalMs * 2);
    const part = (await listPartitions()).find((p) => p.device === d.device);
    if (!part) return undefined;
    if (part.mounted) {
      this.move(s, 'set-aside', 'mounted by someone else: loaded from its mount point if under a mount root');
      return undefined;
    }
    this.move(s, 'mounting');
    const m = await mountReadOnly(d.device, runDir(this.config));
    onMount(m);
    return m.mountpoint;
  }

  private async load(s: DriveState, root: string, mounted: MountedDrive | undefined): Promise<void> {
    this.move(s, 'verifying');
    s.progress = new Progress();
    const admitted: { manifest?: Manifest } = {};
    const outcome = await loadDevice(this.station, {
      root,
      verify: false,
      progress: s.progress,
      signal: s.controller.signal,
      onAdmitted: (job, manifest) => {
        admitted.manifest = manifest;
        s.jobId = job.id;
        this.move(s, 'loading');
        void this.checkSerial(s, mounted, job.id, manifest.deviceId);
        for (const note of mounted?.notes ?? []) this.station.store.addNote(job.id, note);
      },
    });
    const { job, end } = outcome;
    if (end.kind === 'interrupted') {
      if (s.stage !== 'removed') this.move(s, 'interrupted', `${end.reason}; job ${job.id} stays InProgress`);
      return;
    }
    if (admitted.manifest?.eraseDevice) {
      await eraseAfterLoad({ store: this.station.store, log: this.log, move: (d, stage, detail) => this.move(d, stage, detail) }, s, job, mounted);
      return;
    }
    this.move(s, 'done', `job ${job.id} ${job.jobStatus}${outcome.errorCount ? ` (${outcome.errorCount} errors)` : ''}: safe to unplug`);
  }

  /**
   * A drive that cannot be mounted has no readable SIGNATURE; where its serial number is the deviceId of exactly
   * one job still to be loaded, that job becomes DeviceError with the reason.
   */
  private async unmountable(s: DriveState, err: MountRefused): Promise<void> {
    const serial = await serialOf(err.device).catch(() => undefined);
    const job = serial === undefined ? undefined : this.station.store.findByDeviceId(serial);
    if (job) {
      s.jobId = job.id;
      markDeviceError(this.station.store, job.id, `cannot mount the device: ${err.reason}`);
    }
    this.move(s, 'refused', `cannot mount: ${err.reason}${job ? `; job ${job.id} is DeviceError` : ''}`);
  }

  /** The manifest's deviceId against the device's serial number: a warning on the job, not a refusal. */
  private async checkSerial(s: DriveState, mounted: MountedDrive | undefined, jobId: string, deviceId: string): Promise<void> {
    const device = mounted?.device ?? (s.drive.kind === 'mount' ? s.drive.device : undefined);
    const serial = mounted?.serial ?? (device?.startsWith('/dev/') ? await serialOf(device).catch(() => undefined) : undefined);
    if (serial === undefined || serial === deviceId) return;
    const note = `the device's serial number ${serial} differs from the manifest's deviceId ${deviceId}`;
    this.station.store.addNote(jobId, note);
    this.log.warn({ jobId, serial, deviceId }, note);
  }
}

