import { logName } from '../importlog/writer.js';
import type { Db } from '../jobs/db.js';
import type { JobStatus } from '../jobs/lifecycle.js';
import type { Job } from '../jobs/store.js';
import { parseManifest } from '../manifest/parse.js';
import { composeEndMail, jobCounts } from './compose.js';

/**
 * The outbox: notification e-mail waiting for the SMTP server, in the station's database. A message is queued in
 * the transaction that ends its job, and leaves the `queued` state only when the server accepted it (`sent`) or
 * refused every recipient for good (`undeliverable`); rows are kept afterwards as the record of what was told.
 */

export type OutboxState = 'queued' | 'sent' | 'undeliverable';

export interface OutboxMessage {
  id: number;
  jobId: string;
  jobStatus: JobStatus;
  recipients: string[];
  subject: string;
  body: string;
  queuedAt: number;
  state: OutboxState;
  attempts: number;
  nextAttemptAt: number;
  lastError?: string;
  sentAt?: number;
}

/**
 * CANCEL JOB of a running load: the load still settles its in-flight files and then stores the log, which rewrites
 * the message with the final counts and sends it at once. This is how long the message waits for that before it
 * goes as written at the cancel (a load killed meanwhile never stores its log).
 */
export const CANCEL_SETTLE_MS = 10 * 60_000;

/**
 * Queues the message for a job that has just reached an end status; called inside the transaction that moved it.
 * Nothing is queued when the manifest names no address.
 */
export function queueJobEnd(db: Db, job: Job, from: JobStatus, now: number): void {
  const manifest = parseManifest(job.currentManifest);
  if (manifest.notificationEmail.length === 0) return;
  const settling = job.jobStatus === 'Canceled' && from === 'InProgress' && job.logKey === undefined;
  const { subject, text } = compose(db, job, now, settling);
  db.prepare(
    `INSERT INTO outbox (job_id, job_status, recipients, subject, body, queued_at, state, next_attempt_at)
     VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)`,
  ).run(job.id, job.jobStatus, JSON.stringify(manifest.notificationEmail), subject, text, now, settling ? now + CANCEL_SETTLE_MS : now);
}

/**
 * A canceled load has stored its log: its message, if not sent yet, is written again with the final counts and the
 * log's location, and is due at once. Called inside the transaction that records the log.
 */
export function completeJobEnd(db: Db, job: Job, now: number): void {
  const rows = db.prepare(`SELECT id FROM outbox WHERE job_id = ? AND state = 'queued' AND attempts = 0`).all(job.id) as Array<{ id: number }>;
  if (rows.length === 0) return;
  const { subject, text } = compose(db, job, now, false);
  const update = db.prepare(`UPDATE outbox SET subject = ?, body = ?, next_attempt_at = min(next_attempt_at, ?) WHERE id = ?`);
  for (const r of rows) update.run(subject, text, now, r.id);
}

function compose(db: Db, job: Job, now: number, settling: boolean) {
  const manifest = parseManifest(job.currentManifest);
  const log =
    job.logBucket !== undefined && job.logKey !== undefined
      ? { bucket: job.logBucket, key: job.logKey, pending: false }
      : settling
        ? { bucket: manifest.logBucket, key: manifest.logPrefix + logName(job.id), pending: true }
        : undefined;
  return composeEndMail({ job, manifest, ...jobCounts(db, job.id), ...(log && { log }), endedAt: now });
}

interface OutboxRow {
  id: number;
  job_id: string;
  job_status: JobStatus;
  recipients: string;
  subject: string;
  body: string;
  queued_at: number;
  state: OutboxState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  sent_at: number | null;
}

export class Outbox {
  constructor(private readonly db: Db) {}

  /** Queued messages due at `now`, oldest due first. */
  due(now: number, limit = 50): OutboxMessage[] {
    return (
      this.db
        .prepare(`SELECT * FROM outbox WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`)
        .all(now, limit) as OutboxRow[]
    ).map(toMessage);
  }

  /** Every message, newest first. */
  list(): OutboxMessage[] {
    return (this.db.prepare('SELECT * FROM outbox ORDER BY id DESC').all() as OutboxRow[]).map(toMessage);
  }

  queuedCount(): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM outbox WHERE state = 'queued'`).get() as { n: number }).n;
  }

  /**
   * Takes a message for one attempt: counts the attempt and pushes its due time to `leaseUntil`, so that another
   * sender (the daemon and `station mail send` at once) leaves it alone, and a sender that dies mid-attempt leaves
   * it due again later. False when someone else took it first.
   */
  claim(m: OutboxMessage, leaseUntil: number): boolean {
    const r = this.db
      .prepare(`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ? AND state = 'queued' AND next_attempt_at = ?`)
      .run(leaseUntil, m.id, m.nextAttemptAt);
    return r.changes === 1;
  }

  sent(id: number, at: number, note?: string): void {
    this.db.prepare(`UPDATE outbox SET state = 'sent', sent_at = ?, last_error = ? WHERE id = ?`).run(at, note ?? null, id);
  }

  retryLater(id: number, error: string, nextAttemptAt: number): void {
    this.db.prepare(`UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ?`).run(error, nextAttemptAt, id);
  }

  undeliverable(id: number, error: string): void {
    this.db.prepare(`UPDATE outbox SET state = 'undeliverable', last_error = ? WHERE id = ?`).run(error, id);
  }
}

function toMessage(r: OutboxRow): OutboxMessage {
  return {
    id: r.id,
    jobId: r.job_id,
    jobStatus: r.job_status,
    recipients: JSON.parse(r.recipients) as string[],
    subject: r.subject,
    body: r.body,
    queuedAt: r.queued_at,
    state: r.state,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    ...(r.last_error !== null && { lastError: r.last_error }),
    ...(r.sent_at !== null && { sentAt: r.sent_at }),
  };
}
