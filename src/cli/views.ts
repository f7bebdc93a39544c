import type { HistoryEntry, Job } from '../jobs/store.js';
import { parseManifest } from '../manifest/parse.js';

/** The JSON shape of a job, named after the original service's fields. */
export function jobJson(job: Job, history?: HistoryEntry[], notes?: Array<{ at: number; text: string }>) {
  const manifest = parseManifest(job.currentManifest);
  return {
    jobId: job.id,
    jobStatus: job.jobStatus,
    deviceStatus: job.deviceStatus,
    createdAt: iso(job.createdAt),
    accessKeyId: job.accessKeyId,
    bucket: manifest.bucket,
    deviceId: manifest.deviceId,
    ...(job.logKey !== undefined && { logBucket: job.logBucket, logKey: job.logKey }),
    ...(job.errorCount !== undefined && { errorCount: job.errorCount }),
    ...(job.carrier !== undefined && { carrier: job.carrier }),
    ...(job.trackingNumber !== undefined && { trackingNumber: job.trackingNumber }),
    ...(job.reason !== undefined && { reason: job.reason }),
    ...(history && {
      currentManifest: job.currentManifest.toString('utf8'),
      manifestUpdated: !job.currentManifest.equals(job.originalManifest),
      history: history.map((h) => ({ ...h, at: iso(h.at) })),
    }),
    ...(notes && notes.length > 0 && { notes: notes.map((n) => ({ at: iso(n.at), text: n.text })) }),
  };
}

export function statusLines(job: Job, history: HistoryEntry[], notes: Array<{ at: number; text: string }> = []): string[] {
  const j = jobJson(job, history, notes);
  const lines = [
    `job ${j.jobId}`,
    `  job status     ${j.jobStatus}${j.reason ? ` (${j.reason})` : ''}`,
    `  device status  ${j.deviceStatus}${j.carrier ? ` (${j.carrier} ${j.trackingNumber ?? ''})`.trimEnd() : ''}`,
    `  created        ${j.createdAt}`,
    `  account        ${j.accessKeyId}`,
    `  bucket         ${j.bucket}`,
    `  device ID      ${j.deviceId}`,
    `  import log     ${j.logKey !== undefined ? `${j.logBucket}/${j.logKey}` : 'not written yet'}`,
  ];
  if (j.errorCount !== undefined) lines.push(`  errors         ${j.errorCount}`);
  for (const n of j.notes ?? []) lines.push(`  note           ${n.at}  ${n.text}`);
  lines.push('', `current manifest${j.manifestUpdated ? ' (updated; the SIGNATURE still checks against the original)' : ''}:`);
  lines.push(...j.currentManifest!.replace(/\r?\n$/, '').split(/\r?\n/).map((l) => `  ${l}`));
  lines.push('', 'history:');
  for (const h of j.history!) {
    const move = h.from !== undefined ? `${h.from} -> ${h.to}` : h.to;
    lines.push(`  ${h.at}  ${h.subject.padEnd(8)} ${move}${h.note ? `  (${h.note})` : ''}`);
  }
  return lines;
}

export function listLines(jobs: Job[]): string[] {
  if (jobs.length === 0) return ['no jobs'];
  const rows = jobs.map((job) => {
    const j = jobJson(job);
    return [j.jobId, j.jobStatus, j.deviceStatus, j.createdAt, j.bucket];
  });
  const header = ['JOBID', 'STATUS', 'DEVICE', 'CREATED', 'BUCKET'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
