import type { LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { Db } from '../jobs/db.js';
import type { S3Objects } from '../s3/api.js';
import { ObjectWriter } from './objects.js';

/**
 * Aborts multipart uploads the station started that no load will continue: those of jobs that are no longer
 * InProgress (or of one job, when it ends), and those a crash left between CreateMultipartUpload and the
 * journal. Only uploads in the station's own registry are touched: a bucket may hold other people's uploads.
 */
export async function abortAbandonedUploads(db: Db, s3: S3Objects, limit: LimitFunction, log: Logger, jobId?: string): Promise<number> {
  const rows = db
    .prepare(
      `SELECT u.upload_id, u.bucket, u.object_key, u.job_id FROM uploads u JOIN jobs j ON j.id = u.job_id
       WHERE (? IS NULL OR u.job_id = ?)
         AND (j.job_status != 'InProgress' OR ? IS NOT NULL
              OR u.upload_id NOT IN (SELECT upload_id FROM files WHERE state = 'uploading' AND upload_id IS NOT NULL))`,
    )
    .all(jobId ?? null, jobId ?? null, jobId ?? null) as Array<{ upload_id: string; bucket: string; object_key: string; job_id: string }>;
  let aborted = 0;
  for (const u of rows) {
    try {
      await new ObjectWriter(s3, u.bucket, limit).abort(u.object_key, u.upload_id);
    } catch (err) {
      log.warn({ jobId: u.job_id, uploadId: u.upload_id, err: (err as Error).message }, 'could not abort an abandoned multipart upload');
      continue;
    }
    db.transaction(() => {
      db.prepare('DELETE FROM uploads WHERE upload_id = ?').run(u.upload_id);
      db.prepare(`DELETE FROM files WHERE upload_id = ? AND state = 'uploading'`).run(u.upload_id);
    })();
    aborted++;
    log.info({ jobId: u.job_id, bucket: u.bucket, key: u.object_key, uploadId: u.upload_id }, 'abandoned multipart upload aborted');
  }
  return aborted;
}

/**
 * Aborts uploads of a job that the station never learned the ID of: a CreateMultipartUpload whose answer was lost
 * (a reset, a timeout) is tried again and makes a second upload, and a crash can fall between S3's answer and
 * the journal. At the end of a job, an upload still open on one of the job's own keys, begun since its load
 * began and not in the station's registry, can only be such an orphan (or someone else writing the very same
 * key, whose object the job's would overwrite anyway). `since` is taken 15 minutes early: S3 refuses requests
 * signed with a clock further off than that, so its clock and ours agree at least that well.
 */
export async function abortOrphanedUploads(
  db: Db,
  writer: ObjectWriter,
  prefix: string,
  isJobKey: (key: string) => boolean,
  since: number,
  log: Logger,
): Promise<number> {
  const known = db.prepare('SELECT 1 FROM uploads WHERE upload_id = ?');
  const earliest = since - 15 * 60_000;
  let aborted = 0;
  for (const u of await writer.listUploads(prefix)) {
    if (u.initiated.getTime() < earliest || known.get(u.uploadId) !== undefined || !isJobKey(u.key)) continue;
    await writer.abort(u.key, u.uploadId);
    aborted++;
    log.info({ bucket: writer.bucket, key: u.key, uploadId: u.uploadId }, 'orphaned multipart upload aborted');
  }
  return aborted;
}
