import { parseManifest } from '../manifest/parse.js';
import type { Manifest } from '../manifest/types.js';
import { refused } from '../errors.js';
import { openDb, type Db } from './db.js';
import { newJobId, normalizeJobId } from './ids.js';
import { completeJobEnd, queueJobEnd } from '../mail/outbox.js';
import { EXPIRY_MS, canMoveDevice, canMoveJob, isEnded, type DeviceStatus, type JobStatus } from './lifecycle.js';

export interface Job {
  id: string;
  createdAt: number;
  jobStatus: JobStatus;
  deviceStatus: DeviceStatus;
  accessKeyId: string;
  /** the exact bytes given at CREATE JOB: the SIGNATURE is checked against these */
  originalManifest: Buffer;
  /** the manifest the load uses (the original, or the one given at UPDATE JOB) */
  currentManifest: Buffer;
  logBucket?: string;
  logKey?: string;
  errorCount?: number;
  carrier?: string;
  trackingNumber?: string;
  /** why the job ended as it did, in words, where there is more to say than the status */
  reason?: string;
}

export interface HistoryEntry {
  at: number;
  subject: 'job' | 'device' | 'manifest';
  from?: string;
  to: string;
  note?: string;
}

interface JobRow {
  id: string;
  created_at: number;
  job_status: JobStatus;
  device_status: DeviceStatus;
  access_key_id: string;
  original_manifest: Buffer;
  current_manifest: Buffer;
  log_bucket: string | null;
  log_key: string | null;
  error_count: number | null;
  carrier: string | null;
  tracking_number: string | null;
  reason: string | null;
}

export interface StoreOptions {
  /** queue a notification e-mail (to the manifest's `notificationEmail`) in the transaction that ends a job */
  mail?: boolean;
}

/**
 * The job store: jobs, accounts and their history in the station's database file. Every status change is one
 * transaction that also writes its history entry (and, with mail on, the end-of-job message into the outbox); a
 * refused operation throws before anything is written.
 */
export class JobStore {
  readonly db: Db;

  constructor(
    readonly dataDir: string,
    private readonly clock: () => number = Date.now,
    private readonly options: StoreOptions = {},
  ) {
    this.db = openDb(dataDir);
    this.expireOverdue();
  }

  close(): void {
    this.db.close();
  }

  // ---- accounts ---------------------------------------------------------------------------------------------

  /** Stores (or replaces) an account's secret key; tells whether it replaced one. */
  putAccount(accessKeyId: string, secretKey: string): { replaced: boolean } {
    const replaced = this.hasAccount(accessKeyId);
    this.db
      .prepare(
        `INSERT INTO accounts (access_key_id, secret_key, created_at) VALUES (?, ?, ?)
         ON CONFLICT(access_key_id) DO UPDATE SET secret_key = excluded.secret_key`,
      )
      .run(accessKeyId, secretKey, this.clock());
    return { replaced };
  }

  hasAccount(accessKeyId: string): boolean {
    return this.db.prepare('SELECT 1 FROM accounts WHERE access_key_id = ?').get(accessKeyId) !== undefined;
  }

  secretKeyOf(accessKeyId: string): string {
    const row = this.db.prepare('SELECT secret_key FROM accounts WHERE access_key_id = ?').get(accessKeyId) as
      | { secret_key: string }
      | undefined;
    if (!row) throw refused('InvalidAccessKeyId', `no account ${accessKeyId} on this station (station account add ${accessKeyId})`);
    return row.secret_key;
  }

  accountIds(): string[] {
    return (this.db.prepare('SELECT access_key_id FROM accounts ORDER BY access_key_id').all() as Array<{ access_key_id: string }>).map(
      (r) => r.access_key_id,
    );
  }

  // ---- jobs -------------------------------------------------------------------------------------------------

  /** CREATE JOB: the manifest is already validated; the account must exist. */
  create(manifestBytes: Buffer, manifest: Manifest): Job {
    this.secretKeyOf(manifest.accessKeyId);
    const now = this.clock();
    return this.db
      .transaction(() => {
        let id = newJobId();
        while (this.find(id)) id = newJobId();
        this.db
          .prepare(
            `INSERT INTO jobs (id, created_at, job_status, device_status, access_key_id, original_manifest, current_manifest)
             VALUES (?, ?, 'Pending', 'NotReceived', ?, ?, ?)`,
          )
          .run(id, now, manifest.accessKeyId, manifestBytes, manifestBytes);
        this.record(id, now, 'job', undefined, 'Pending', 'created');
        return this.get(id);
      })
      .immediate();
  }

  find(id: string): Job | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row && toJob(row);
  }

  /** The job named by a person's input, or `InvalidJobId`. */
  get(input: string): Job {
    const id = normalizeJobId(input);
    const job = this.find(id);
    if (!job) throw refused('InvalidJobId', `no job ${id} on this station`);
    return job;
  }

  /**
   * The one job still to be loaded whose manifest names this device ID (a drive's serial number), for a drive
   * whose SIGNATURE cannot be read; undefined when none or several do.
   */
  findByDeviceId(deviceId: string): Job | undefined {
    const open = this.list().filter(
      (j) => (j.jobStatus === 'Pending' || j.jobStatus === 'InProgress') && parseManifest(j.currentManifest).deviceId === deviceId,
    );
    return open.length === 1 ? open[0] : undefined;
  }

  /** LIST JOBS, newest first. */
  list(): Job[] {
    return (this.db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC').all() as JobRow[]).map(toJob);
  }

  history(id: string): HistoryEntry[] {
    const rows = this.db
      .prepare('SELECT at, subject, from_status, to_status, note FROM job_history WHERE job_id = ? ORDER BY id')
      .all(id) as Array<{ at: number; subject: HistoryEntry['subject']; from_status: string | null; to_status: string; note: string | null }>;
    return rows.map((r) => ({
      at: r.at,
      subject: r.subject,
      ...(r.from_status !== null && { from: r.from_status }),
      to: r.to_status,
      ...(r.note !== null && { note: r.note }),
    }));
  }

  /** UPDATE JOB: `Pending` only; the original manifest stays for authentication. */
  update(input: string, manifestBytes: Buffer, manifest: Manifest): Job {
    return this.db
      .transaction(() => {
        const job = this.get(input);
        refuseIfEnded(job, 'updated');
        if (job.jobStatus !== 'Pending') {
          throw refused('UnableToUpdateJobId', `job ${job.id} is ${job.jobStatus}: only a Pending job can be updated`);
        }
        if (manifest.accessKeyId !== job.accessKeyId) {
          throw refused('InvalidAccessKeyId', `job ${job.id} belongs to account ${job.accessKeyId}, not ${manifest.accessKeyId}`);
        }
        this.db.prepare('UPDATE jobs SET current_manifest = ? WHERE id = ?').run(manifestBytes, job.id);
        this.record(job.id, this.clock(), 'manifest', undefined, 'updated', 'UPDATE JOB: new manifest for the load');
        return this.get(job.id);
      })
      .immediate();
  }

  /** CANCEL JOB: `Pending` or `InProgress`. A running load sees the status and stops. */
  cancel(input: string): Job {
    return this.db
      .transaction(() => {
        const job = this.get(input);
        refuseIfEnded(job, 'canceled');
        if (!canMoveJob(job.jobStatus, 'Canceled')) {
          throw refused('UnableToCancelJobId', `job ${job.id} is ${job.jobStatus}: a finished job cannot be canceled`);
        }
        return this.moveJobNow(job, 'Canceled', 'CANCEL JOB');
      })
      .immediate();
  }

  /** Moves a job's status forward, or refuses with `refusal` naming why. */
  moveJob(input: string, to: JobStatus, note?: string, refusal = 'InvalidJobStatus'): Job {
    return this.db
      .transaction(() => {
        const job = this.get(input);
        if (!canMoveJob(job.jobStatus, to)) {
          throw refused(refusal, `job ${job.id} is ${job.jobStatus} and cannot become ${to}`);
        }
        return this.moveJobNow(job, to, note);
      })
      .immediate();
  }

  /** Moves a device's status forward (`received`, `returned`). */
  moveDevice(input: string, to: DeviceStatus, details: { carrier?: string; trackingNumber?: string; note?: string } = {}): Job {
    return this.db
      .transaction(() => {
        const job = this.get(input);
        if (!canMoveDevice(job.deviceStatus, to)) {
          throw refused('InvalidDeviceStatus', `the device of job ${job.id} is ${job.deviceStatus} and cannot become ${to}`);
        }
        this.db
          .prepare('UPDATE jobs SET device_status = ?, carrier = coalesce(?, carrier), tracking_number = coalesce(?, tracking_number) WHERE id = ?')
          .run(to, details.carrier ?? null, details.trackingNumber ?? null, job.id);
        const note = details.note ?? (details.carrier ? `${details.carrier} ${details.trackingNumber ?? ''}`.trim() : undefined);
        this.record(job.id, this.clock(), 'device', job.deviceStatus, to, note);
        return this.get(job.id);
      })
      .immediate();
  }

  /** A warning a person should see in the job's status (a serial number that differs, an unreplayed journal). */
  addNote(id: string, text: string): void {
    this.db.prepare('INSERT INTO job_notes (job_id, at, text) VALUES (?, ?, ?)').run(id, this.clock(), text);
  }

  notes(id: string): Array<{ at: number; text: string }> {
    return this.db.prepare('SELECT at, text FROM job_notes WHERE job_id = ? ORDER BY id').all(id) as Array<{ at: number; text: string }>;
  }

  /** The jobs that changed last, most recent first, with when: the station screen's list. */
  recent(limit: number): Array<{ job: Job; updatedAt: number }> {
    const rows = this.db
      .prepare(
        `SELECT jobs.*, coalesce((SELECT max(at) FROM job_history WHERE job_id = jobs.id), created_at) AS updated_at
         FROM jobs ORDER BY updated_at DESC, id LIMIT ?`,
      )
      .all(limit) as Array<JobRow & { updated_at: number }>;
    return rows.map((r) => ({ job: toJob(r), updatedAt: r.updated_at }));
  }

  /** How many jobs are in each status, for the metrics. */
  countByStatus(): Map<string, number> {
    const rows = this.db.prepare('SELECT job_status, count(*) AS n FROM jobs GROUP BY job_status').all() as Array<{ job_status: string; n: number }>;
    return new Map(rows.map((r) => [r.job_status, r.n]));
  }

  /** Records where the import log was stored and how many files failed. */
  setLog(id: string, logBucket: string, logKey: string, errorCount: number): void {
    this.db.prepare('UPDATE jobs SET log_bucket = ?, log_key = ?, error_count = ? WHERE id = ?').run(logBucket, logKey, errorCount, id);
  }

  /**
   * A load's end, in one transaction: where its import log was stored, then (a finished load) its end status, or
   * (a canceled one, already `Canceled`) the final counts and log location into its waiting message.
   */
  endLoad(id: string, log: { logBucket: string; logKey: string; errorCount: number }, to?: JobStatus, note?: string): Job {
    return this.db
      .transaction(() => {
        this.setLog(id, log.logBucket, log.logKey, log.errorCount);
        const job = this.get(id);
        if (to !== undefined) {
          if (!canMoveJob(job.jobStatus, to)) throw refused('InvalidJobStatus', `job ${job.id} is ${job.jobStatus} and cannot become ${to}`);
          return this.moveJobNow(job, to, note);
        }
        if (this.options.mail) completeJobEnd(this.db, job, this.clock());
        return job;
      })
      .immediate();
  }

  /** Jobs whose device has not arrived 30 days after creation become `Expired`. */
  expireOverdue(): string[] {
    const cutoff = this.clock() - EXPIRY_MS;
    return this.db
      .transaction(() => {
        const rows = this.db
          .prepare(`SELECT * FROM jobs WHERE job_status = 'Pending' AND device_status = 'NotReceived' AND created_at <= ?`)
          .all(cutoff) as JobRow[];
        for (const row of rows) this.moveJobNow(toJob(row), 'Expired', 'no device 30 days after creation');
        return rows.map((r) => r.id);
      })
      .immediate();
  }

  /** Always inside a caller's transaction: the status, its history entry and its message commit together. */
  private moveJobNow(job: Job, to: JobStatus, note?: string): Job {
    const now = this.clock();
    this.db.prepare('UPDATE jobs SET job_status = ?, reason = coalesce(?, reason) WHERE id = ?').run(to, note ?? null, job.id);
    this.record(job.id, now, 'job', job.jobStatus, to, note);
    const moved = this.get(job.id);
    if (this.options.mail && isEnded(to)) queueJobEnd(this.db, moved, job.jobStatus, now);
    return moved;
  }

  private record(id: string, at: number, subject: HistoryEntry['subject'], from: string | undefined, to: string, note?: string): void {
    this.db
      .prepare('INSERT INTO job_history (job_id, at, subject, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, at, subject, from ?? null, to, note ?? null);
  }
}

/** Canceled and expired jobs have names of their own in the contract's errors. */
function refuseIfEnded(job: Job, verb: string): void {
  if (job.jobStatus === 'Canceled') throw refused('CanceledJobId', `job ${job.id} was canceled and cannot be ${verb}`);
  if (job.jobStatus === 'Expired') throw refused('ExpiredJobId', `job ${job.id} has expired and cannot be ${verb}`);
}

function toJob(r: JobRow): Job {
  return {
    id: r.id,
    createdAt: r.created_at,
    jobStatus: r.job_status,
    deviceStatus: r.device_status,
    accessKeyId: r.access_key_id,
    originalManifest: r.original_manifest,
    currentManifest: r.current_manifest,
    ...(r.log_bucket !== null && { logBucket: r.log_bucket }),
    ...(r.log_key !== null && { logKey: r.log_key }),
    ...(r.error_count !== null && { errorCount: r.error_count }),
    ...(r.carrier !== null && { carrier: r.carrier }),
    ...(r.tracking_number !== null && { trackingNumber: r.tracking_number }),
    ...(r.reason !== null && { reason: r.reason }),
  };
}
