import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { makeBucket, s3ClientFor, useRgw, type S3Conf } from './rgw.js';
import { ACCESS_KEY_ID, SECRET_KEY, cleanEnv, manifestFixture, tempStation, type Result } from './station.js';

export const MiB = 1024 * 1024;

/** Deterministic bytes that are not all alike, so a wrong offset or a swapped part shows in the MD5. */
export function bytes(n: number, seed = 1): Buffer {
  const key = createHash('md5').update(`seed ${seed}`).digest();
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

export const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** Writes files (relative path → content) under a drive folder. */
export function writeDrive(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
}

export interface LoadSetup {
  s3: S3Conf;
  /** the S3 endpoint the station talks to (radosgw, or a fault proxy in front of it) */
  endpoint: string;
  bucket: string;
  logBucket: string;
  drive: string;
  jobId: string;
  dir: string;
  dataDir: string;
  configFile: string;
  /** runs the station and waits; use `runAsync` for anything that reaches S3 through a fault proxy of this process */
  run: (args: string[]) => Result;
  runAsync: (args: string[]) => Promise<Result>;
  env: Record<string, string>;
}

export interface SetupOptions {
  /** extra manifest lines (YAML), appended to the minimal fixture */
  manifest?: string;
  /** extra config under `s3:` (indented lines) */
  s3?: string;
  /** extra config under `upload:` */
  upload?: string;
  /** extra top-level config sections */
  config?: string;
  /** talk to S3 through this endpoint instead of radosgw directly */
  endpoint?: (s3: S3Conf) => Promise<string> | string;
  /** write the SIGNATURE onto the drive (default true) */
  signature?: boolean;
}

/**
 * A station ready to load: radosgw buckets, a config pointing at S3, the fixture account, a job created from a
 * manifest for those buckets, and a drive folder holding the job's SIGNATURE.
 */
export async function setupLoad(t: Parameters<typeof tempStation>[0], opts: SetupOptions = {}): Promise<LoadSetup> {
  const s3 = await useRgw();
  const bucket = await makeBucket(s3, 'load');
  const logBucket = await makeBucket(s3, 'logs');
  const endpoint = opts.endpoint ? await opts.endpoint(s3) : s3.endpoint;
  const s = tempStation(t);
  writeFileSync(
    s.configFile,
    `s3:\n  endpoint: ${endpoint}\n${opts.s3 ?? ''}upload:\n${uploadDefaults(opts.upload)}${opts.upload ?? ''}${opts.config ?? ''}${screenDefault(opts.config)}`,
  );
  const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  const run = (args: string[]) => s.run(args, { env });
  const runAsync = (args: string[]) => s.runAsync(args, { env });
  const add = s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY });
  if (add.code !== 0) throw new Error(add.stderr);
  const manifestFile = join(s.dir, 'manifest.yaml');
  const text = readFileSync(manifestFixture('good/minimal.yaml'), 'utf8').replace('bucket: import-demo', `bucket: ${bucket}`);
  writeFileSync(manifestFile, `${text}logBucket: ${logBucket}\n${opts.manifest ?? ''}`);
  const drive = join(s.dir, 'drive');
  mkdirSync(drive);
  // Asynchronously: a fault proxy in front of S3 runs in this process and must keep answering meanwhile.
  const created = await runAsync(['job', 'create', manifestFile, '--json', ...(opts.signature === false ? [] : ['--signature-out', join(drive, 'SIGNATURE')])]);
  if (created.code !== 0) throw new Error(created.stderr);
  const jobId = JSON.parse(created.stdout).jobId as string;
  return { s3, endpoint, bucket, logBucket, drive, jobId, dir: s.dir, dataDir: s.dataDir, configFile: s.configFile, run, runAsync, env };
}

/**
 * The station screen on any free port unless the test sets its own: daemons of tests running side by side must not
 * compete for the default port (nor take a real station's).
 */
function screenDefault(config = ''): string {
  return /^screen:/m.test(config) ? '' : 'screen:\n  listen: 127.0.0.1:0\n';
}

/** The environment of a station process for this setup, started outside `run`/`runAsync` (a daemon, a run to kill). */
export function stationEnv(setup: LoadSetup, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cleanEnv({ ...setup.env, STATION_CONFIG: setup.configFile, STATION_DATA_DIR: setup.dataDir, ...extra });
}

/** Small parts and few tries, so tests are quick; a setting the test gives in `upload` wins. */
function uploadDefaults(given = ''): string {
  const defaults = { multipartThreshold: '5 MiB', partSize: '5 MiB', maxAttempts: '3' };
  return Object.entries(defaults)
    .filter(([key]) => !new RegExp(`^\\s*${key}:`, 'm').test(given))
    .map(([key, value]) => `  ${key}: ${value}\n`)
    .join('');
}

/** `setupLoad` with S3 reached through a fault proxy (test/support/fault-proxy.ts), closed after the test. */
export async function setupLoadViaProxy(
  t: Parameters<typeof tempStation>[0],
  opts: Omit<SetupOptions, 'endpoint'> = {},
): Promise<LoadSetup & { proxy: FaultProxy }> {
  let proxy: FaultProxy | undefined;
  const setup = await setupLoad(t, {
    ...opts,
    endpoint: async (s3) => {
      proxy = await startFaultProxy(s3.endpoint);
      t.after(() => proxy!.close());
      return proxy.endpoint;
    },
  });
  return { ...setup, proxy: proxy! };
}

export type LogRecord = Record<'DateTime' | 'File' | 'Status' | 'Code' | 'Key' | 'MD5' | 'Bytes' | 'Content-Type', string>;

/** The import log as stored in the log bucket, parsed by a CSV parser. */
export async function logFromBucket(setup: LoadSetup): Promise<{ text: string; rows: LogRecord[] }> {
  const client = s3ClientFor(setup.s3);
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: setup.logBucket, Key: `import-log-${setup.jobId}` }));
    const text = await out.Body!.transformToString('utf8');
    return { text, rows: parse(text, { columns: true, relax_column_count: false }) as LogRecord[] };
  } finally {
    client.destroy();
  }
}

/** Every object in a bucket with its bytes. */
export async function objectsIn(s3: S3Conf, bucket: string): Promise<Map<string, Buffer>> {
  const client = s3ClientFor(s3);
  const out = new Map<string, Buffer>();
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
        out.set(o.Key!, Buffer.from(await got.Body!.transformToByteArray()));
      }
      token = page.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
  return out;
}

export async function openUploads(s3: S3Conf, bucket: string): Promise<number> {
  const client = s3ClientFor(s3);
  try {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return out.Uploads?.length ?? 0;
  } finally {
    client.destroy();
  }
}
