import { createHash } from 'node:crypto';
import { mkdirSync, openSync, closeSync, writeSync, fsyncSync, renameSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { csv, HEADER, type LogRow } from './format.js';

export const logName = (jobId: string) => `import-log-${jobId}`;

/**
 * Writes a job's import log into the data directory (`logs/import-log-JOBID.csv`) from its rows in walk order,
 * a batch at a time, then renames it into place: a reader never sees half a log, and the rows are never all in
 * memory. Returns the file's path.
 */
export function writeLocalLog(dataDir: string, jobId: string, rows: Iterable<LogRow>): string {
  const dir = join(dataDir, 'logs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${logName(jobId)}.csv`);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${HEADER.join(',')}\r\n`);
    let batch: LogRow[] = [];
    for (const row of rows) {
      batch.push(row);
      if (batch.length === 1000) {
        writeSync(fd, csv(batch));
        batch = [];
      }
    }
    if (batch.length > 0) writeSync(fd, csv(batch));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return file;
}

/** The log's bytes and their MD5, for the upload. */
export function readLog(file: string): { body: Buffer; md5: Buffer } {
  const body = readFileSync(file);
  return { body, md5: createHash('md5').update(body).digest() };
}
