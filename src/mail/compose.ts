import type { Db } from '../jobs/db.js';
import type { JobStatus } from '../jobs/lifecycle.js';
import type { Job } from '../jobs/store.js';
import type { Manifest } from '../manifest/types.js';

/**
 * The message a job's end sends to the manifest's `notificationEmail`: what the original service's "RE: GET
 * STATUS" e-mail told (job, statuses, where the import log is), with the counts a customer checks first, and for
 * a job that ended without its data loaded, why and what to do next, in plain words. Plain text only: it is read
 * by people and by scripts that grep for `JOBID:`.
 */

export interface EndFacts {
  job: Job;
  manifest: Manifest;
  /** files stored (`200 OK` rows) */
  stored: number;
  /** files not stored for an error (rows with a status of 400 or more) */
  failed: number;
  /** bytes of the stored files */
  bytes: number;
  /** where the import log is, or (a load still settling after CANCEL JOB) will be */
  log?: { bucket: string; key: string; pending: boolean };
  endedAt: number;
}

export interface Composed {
  subject: string;
  text: string;
}

/** Counts of the job's rows in the load journal (the same database), as the import log will show them. */
export function jobCounts(db: Db, jobId: string): { stored: number; failed: number; bytes: number } {
  const row = db
    .prepare(
      `SELECT coalesce(sum(status = 200), 0) AS stored, coalesce(sum(status >= 400), 0) AS failed,
              coalesce(sum(CASE WHEN status = 200 THEN size ELSE 0 END), 0) AS bytes
       FROM files WHERE job_id = ? AND state = 'done'`,
    )
    .get(jobId) as { stored: number; failed: number; bytes: number };
  return row;
}

/** What each end status means, and what the customer does next. */
const EXPLAIN: Partial<Record<JobStatus, { meaning: string; next?: string }>> = {
  Completed: { meaning: 'every file on your device was stored in your bucket.' },
  CompletedWithErrors: {
    meaning: 'the load finished, but some files were not stored.',
    next:
      'The import log lists every file with its Status and Code: the rows that are not "200 OK" name each file ' +
      'that was not stored and why. Send those files again on a new job, or upload them yourself.',
  },
  Canceled: {
    meaning: 'the job was canceled (CANCEL JOB).',
    next: 'Files stored before the cancellation stay in your bucket; the import log lists them. Your device will be returned.',
  },
  Expired: {
    meaning: 'your device did not arrive within 30 days of CREATE JOB, so the job expired.',
    next: 'If you still want the data loaded, create a new job (CREATE JOB), put its SIGNATURE file on the device, and ship it with the new job ID on the label.',
  },
  MissingSignature: {
    meaning: 'nothing was loaded: the device has no SIGNATURE file at its root.',
    next:
      'Create a new job (CREATE JOB), save the SIGNATURE file text it returns as a file named exactly SIGNATURE in ' +
      'the root folder of the device, and ship the device again with the new job ID on the label. Your device will be returned.',
  },
  InvalidSignature: {
    meaning: 'nothing was loaded: the SIGNATURE file on the device does not match the manifest given at CREATE JOB.',
    next:
      'This happens when the manifest was changed after CREATE JOB, or the SIGNATURE belongs to another job. ' +
      'Create a new job with the manifest you want used (CREATE JOB), copy the SIGNATURE file it returns to the ' +
      'root folder of the device, replacing the old one, and ship the device again with the new job ID on the label. ' +
      'Your device will be returned.',
  },
  DeviceError: {
    meaning: 'the station could not read your device.',
    next:
      'Check the device on a computer of your own: it must be readable, with a supported file system (ext2/3/4, ' +
      'XFS, FAT32 or NTFS). Then create a new job (CREATE JOB) and ship the device again. Files stored before the ' +
      'error, if any, stay in your bucket. Your device will be returned.',
  },
};

export function composeEndMail(f: EndFacts): Composed {
  const { job, manifest } = f;
  const explain = EXPLAIN[job.jobStatus] ?? { meaning: `the job is ${job.jobStatus}.` };
  const lines = [
    `Your import job ${job.id} has ended: ${job.jobStatus}.`,
    '',
    `JOBID: ${job.id}`,
    `Job status: ${job.jobStatus}: ${explain.meaning}`,
    `Device status: ${job.deviceStatus}`,
    `Bucket: ${manifest.bucket}`,
    `Files stored: ${f.stored}`,
    `Files not stored: ${f.failed}`,
    `Bytes stored: ${f.bytes}${f.bytes >= 1024 ? ` (${human(f.bytes)})` : ''}`,
  ];
  if (f.log) {
    lines.push(`Log bucket: ${f.log.bucket}`, `Log key: ${f.log.key}`);
    if (f.log.pending) lines.push('(the load was stopping when this was written: the log and the counts may still grow by the files that were in flight)');
  } else {
    lines.push('Import log: none (no load took place)');
  }
  // `reason` is what the station recorded with the end status; for a finished load it is only the error count.
  const reason = job.reason !== undefined && !/^\d+ errors$/.test(job.reason) ? job.reason : undefined;
  if (reason !== undefined && job.jobStatus !== 'Completed') lines.push(`Reason: ${reason}`);
  lines.push(`Created: ${new Date(job.createdAt).toUTCString()}`, `Ended: ${new Date(f.endedAt).toUTCString()}`);
  if (explain.next) lines.push('', `What to do: ${explain.next}`);
  lines.push('', `This message was sent by the import station because the manifest of job ${job.id} names this address in notificationEmail.`);
  return { subject: `Import job ${job.id}: ${job.jobStatus}`, text: `${lines.join('\n')}\n` };
}

function human(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
