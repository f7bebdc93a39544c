// What a finished load must have done, checked from the outside: every file of the drive is an object with the
// same bytes (downloaded and compared), nothing else is stored, the import log has exactly one right row per file,
// and no multipart upload is left open. Used by the fault-injection test and by the crash trials.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { bytes, md5, type LogRecord } from './load.js';
import { s3ClientFor, type S3Conf } from './rgw.js';

export interface Audit {
  files: number;
  bytes: number;
  /** files with no object */
  lost: number;
  /** objects whose bytes differ from their file's */
  corrupt: number;
  /** objects no file of the drive accounts for */
  strayObjects: number;
  /** files with more than one log row */
  duplicatedRows: number;
  /** files with no log row (all of them when the log is not stored) */
  missingRows: number;
  /** rows whose status, MD5, size or key is not the file's */
  wrongRows: number;
  /** multipart uploads still open in the bucket and the log bucket */
  openUploads: number;
  /** the first few problems, in words */
  problems: string[];
}

export interface AuditTarget {
  s3: S3Conf;
  bucket: string;
  logBucket: string;
  jobId: string;
  drive: string;
}

/** Every regular file under `root` except the SIGNATURE: relative path → its bytes' MD5 and size. */
export function driveFiles(root: string): Map<string, { md5: string; size: number }> {
  const files = new Map<string, { md5: string; size: number }>();
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = statSync(join(root, path));
      if (st.isDirectory()) visit(path);
      else if (path !== 'SIGNATURE') files.set(path, { md5: md5(readFileSync(join(root, path))), size: st.size });
    }
  };
  visit('');
  return files;
}

export async function auditLoad(target: AuditTarget): Promise<Audit> {
  const client = s3ClientFor(target.s3);
  try {
    const files = driveFiles(target.drive);
    const audit: Audit = {
      files: files.size,
      bytes: [...files.values()].reduce((sum, f) => sum + f.size, 0),
      lost: 0,
      corrupt: 0,
      strayObjects: 0,
      duplicatedRows: 0,
      missingRows: 0,
      wrongRows: 0,
      openUploads: 0,
      problems: [],
    };
    const problem = (text: string) => {
      if (audit.problems.length < 20) audit.problems.push(text);
    };

    const objects = await objectDigests(client, target.bucket);
    for (const [path, file] of files) {
      const object = objects.get(path);
      if (object === undefined) {
        audit.lost++;
        problem(`lost: ${path}`);
      } else if (object !== file.md5) {
        audit.corrupt++;
        problem(`corrupt: ${path} (object ${object}, file ${file.md5})`);
      }
    }
    for (const key of objects.keys()) {
      if (!files.has(key)) {
        audit.strayObjects++;
        problem(`stray object: ${key}`);
      }
    }

    const rows = await logRows(client, target);
    if (rows === undefined) problem('no import log in the log bucket');
    const seen = new Map<string, number>();
    for (const row of rows ?? []) {
      if (row.File === 'SIGNATURE') continue;
      seen.set(row.File, (seen.get(row.File) ?? 0) + 1);
      const file = files.get(row.File);
      const right = file && row.Status === '200' && row.Code === 'OK' && row.MD5 === file.md5 && row.Bytes === String(file.size) && row.Key === `${target.bucket}/${row.File}`;
      if (!right) {
        audit.wrongRows++;
        problem(`wrong row: ${JSON.stringify(row)}`);
      }
    }
    for (const path of files.keys()) {
      const n = seen.get(path) ?? 0;
      if (n === 0) audit.missingRows++;
      if (n > 1) {
        audit.duplicatedRows++;
        problem(`${n} rows: ${path}`);
      }
    }
    if (rows !== undefined && audit.missingRows > 0) problem(`${audit.missingRows} files have no row`);

    for (const bucket of [target.bucket, target.logBucket]) {
      const open = (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      audit.openUploads += open.length;
      for (const u of open) problem(`open upload: ${bucket}/${u.Key} ${u.UploadId}`);
    }
    return audit;
  } finally {
    client.destroy();
  }
}

export type FaultCounts = Pick<Audit, 'lost' | 'corrupt' | 'strayObjects' | 'duplicatedRows' | 'missingRows' | 'wrongRows' | 'openUploads'>;

/** The counts that must all be 0 after a load. */
export function faults(a: Audit): FaultCounts {
  const { lost, corrupt, strayObjects, duplicatedRows, missingRows, wrongRows, openUploads } = a;
  return { lost, corrupt, strayObjects, duplicatedRows, missingRows, wrongRows, openUploads };
}

async function objectDigests(client: S3Client, bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      out.set(o.Key!, md5(Buffer.from(await got.Body!.transformToByteArray())));
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

async function logRows(client: S3Client, target: AuditTarget): Promise<LogRecord[] | undefined> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: target.logBucket, Key: `import-log-${target.jobId}` }));
    return parse(await out.Body!.transformToString('utf8'), { columns: true }) as LogRecord[];
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

/**
 * A mixed drive, the same for a given seed: `multipart` files above the tests' 5 MiB threshold (several parts
 * each), `medium` files of 64 KiB to 1 MiB and `small` files of 0 to 16 KiB, in nested folders.
 */
export function mixedDrive(seed: number, counts = { multipart: 3, medium: 40, small: 300 }): Record<string, Buffer> {
  const MiB = 1024 * 1024;
  const files: Record<string, Buffer> = {};
  let n = seed * 100_003;
  const next = (mod: number) => (n = (n * 48271 + 11) % 2147483647) % mod;
  for (let i = 0; i < counts.multipart; i++) files[`large/part-${i}.bin`] = bytes(11 * MiB + next(6 * MiB), n);
  for (let i = 0; i < counts.medium; i++) files[`medium/${i % 4}/m-${i}.dat`] = bytes(64 * 1024 + next(960 * 1024), n);
  for (let i = 0; i < counts.small; i++) files[`small/${i % 10}/${i % 3}/s-${i}.txt`] = bytes(next(16 * 1024 + 1), n);
  return files;
}
