// A real S3 server (Ceph radosgw on loopback) for node:test tests.
//
// useRgw() reuses the server that test/support/with-rgw.sh started for the whole run
// (env STATION_TEST_RGW_ENDPOINT, STATION_TEST_RGW_ACCESS_KEY, STATION_TEST_RGW_SECRET_KEY);
// without it, it installs the packages if missing and starts a private cluster for this process
// (about 1 s), which is stopped and wiped when the process exits.
//
// radosgw differs from AWS S3 in ways tests must allow for: CompleteMultipartUpload answers with an
// empty ETag (use HeadObject), error messages are empty (the SDK's error *name* is right), ListParts
// on an unknown upload is 404 NoSuchKey, and x-amz-checksum-* headers are ignored.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface S3Conf {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const S3_SCRIPTS = fileURLToPath(new URL('../s3/', import.meta.url));
const REGION = 'us-east-1';

let server: Promise<S3Conf> | undefined;

/** The S3 server for this test process: the shared one from with-rgw.sh, or a private one started once. */
export async function useRgw(): Promise<S3Conf> {
  server ??= fromEnv() ?? startPrivate();
  return server;
}

/** An S3Client set up for radosgw (path-style, no flexible checksums: radosgw refuses aws-chunked bodies). */
export function s3ClientFor(conf: S3Conf): S3Client {
  return new S3Client({
    endpoint: conf.endpoint,
    region: conf.region,
    credentials: { accessKeyId: conf.accessKeyId, secretAccessKey: conf.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Creates a new bucket and returns its name: `prefix-<time>-<random>`, where the prefix is `name`
 * (lower-cased, reduced to letters, digits and '-') or "test". Unique, so tests never share buckets.
 */
export async function makeBucket(conf: S3Conf, name?: string): Promise<string> {
  const prefix =
    (name ?? 'test')
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test';
  const bucket = `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const client = s3ClientFor(conf);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

function fromEnv(): Promise<S3Conf> | undefined {
  const endpoint = process.env.STATION_TEST_RGW_ENDPOINT;
  if (!endpoint) return undefined;
  const accessKeyId = process.env.STATION_TEST_RGW_ACCESS_KEY;
  const secretAccessKey = process.env.STATION_TEST_RGW_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey) {
    return Promise.reject(
      new Error('STATION_TEST_RGW_ENDPOINT is set but STATION_TEST_RGW_ACCESS_KEY / _SECRET_KEY are not'),
    );
  }
  return Promise.resolve({ endpoint, accessKeyId, secretAccessKey, region: REGION });
}

async function startPrivate(): Promise<S3Conf> {
  await run(join(S3_SCRIPTS, 'install-rgw.sh'), []);
  const tmp = mkdtempSync(join(tmpdir(), 'station-rgw-'));
  const dir = join(tmp, 'cluster');
  // The daemons detach from us, so nothing stops them unless we do: register before starting,
  // so a half-started cluster is stopped too.
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [join(S3_SCRIPTS, 'rgw-stop.sh'), dir, '--wipe'], { stdio: 'ignore' });
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stop();
      process.kill(process.pid, signal); // our listener is gone now: die of the signal as before
    });
  }
  const [port, monPort] = await freePorts(2);
  const { stdout } = await run(join(S3_SCRIPTS, 'rgw-start.sh'), [dir, String(port)], { MON_PORT: String(monPort) });
  const vars = new Map(
    stdout
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const get = (key: string): string => {
    const value = vars.get(key);
    if (!value) throw new Error(`rgw-start.sh printed no ${key}:\n${stdout}`);
    return value;
  };
  return {
    endpoint: get('S3_ENDPOINT'),
    accessKeyId: get('AWS_ACCESS_KEY_ID'),
    secretAccessKey: get('AWS_SECRET_ACCESS_KEY'),
    region: vars.get('AWS_REGION') ?? REGION,
  };
}

/** Ports that are free on 127.0.0.1 right now (all held at once, so they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      const address = srv.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  }
}

/** Runs a bash script; resolves with its output, rejects with its stderr when it fails. */
function run(script: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ stdout });
      else reject(new Error(`${script} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderr}`));
    });
  });
}
