import type { S3Client } from '@aws-sdk/client-s3';
import type { LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { Db } from '../jobs/db.js';
import { S3Refused } from '../s3/errors.js';
import { ObjectWriter } from './objects.js';

/**
 * Aborts multipart uploads the station started that no load will continue: those of jobs that are no longer
 * InProgress (or of one job, when it ends), and those a crash left between CreateMultipartUpload and the
 * journal. Only uploads in the station's own registry are touched: a bucket may hold other people's uploads.
 */
export async function abortAbandonedUploads(db: Db, client: S3Client, limit: LimitFunction, log: Logger, jobId?: string): Promise<number> {
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
      await new ObjectWriter(client, u.bucket, limit).abort(u.object_key, u.upload_id);
    } catch (err) {
      // Already gone (completed, or aborted before): nothing left to do.
      if (!(err instanceof S3Refused && err.status === 404)) {
        log.warn({ jobId: u.job_id, uploadId: u.upload_id, err: (err as Error).message }, 'could not abort an abandoned multipart upload');
        continue;
      }
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
