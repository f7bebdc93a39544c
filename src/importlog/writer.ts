import { mkdirSync, openSync, closeSync, writeSync, fsyncSync, renameSync, readSync, fstatSync } from 'node:fs';
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
      if (batch.length === 64) {
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

/**
 * Reads the log into memory lent by `take` (the station's body memory, so a log of a million rows does not add
 * its size to the process on top of the budget); the caller gives the memory back.
 */
export async function readLogInto<T extends { buffer: Buffer }>(file: string, take: (size: number) => Promise<T>): Promise<T> {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const body = await take(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, body.buffer, done, size - done, done);
      if (n === 0) throw new Error(`${file} ended at ${done} bytes, not ${size}`);
      done += n;
    }
    return body;
  } finally {
    closeSync(fd);
  }
}
