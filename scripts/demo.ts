/**
 * The demo (npm run demo, via scripts/demo, which builds first): the station's main job on an embedded default.
 *
 * s3rver, an S3 server written in Node, runs in this process on a free loopback port; the station itself runs as
 * subprocesses, each command printed as a person would type it: an account is added, a job is created from
 * fixtures/manifests/good/full.yaml, a copy of the fixture drive fixtures/drives/seed-example gets its SIGNATURE,
 * the drive is loaded, the job's status shown; then the import log is fetched back from the log bucket and the
 * bucket's objects listed. Everything lives in one temp folder, kept for a look afterwards (`--clean` removes it).
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STATION = join(ROOT, 'dist', 'cli', 'main.js');
const MANIFEST = 'fixtures/manifests/good/full.yaml';
const DRIVE = 'fixtures/drives/seed-example';
/** The account of the fixture manifest: AWS's documented example key pair. */
const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
/** s3rver checks signatures against its one built-in key pair. */
const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

// s3rver is CommonJS without type declarations: required, and typed here with the little the demo uses.
interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: { address: string; port: number; directory: string; silent: boolean }) => S3rverServer;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** A step that failed: its message is the demo's last word. */
class DemoError extends Error {}

const EXIT_MEANINGS: Record<number, string> = {
  1: 'the operation was refused',
  2: 'bad usage, bad config, or a file that cannot be read',
  3: 'CompletedWithErrors: some files were not loaded',
  4: 'the load was refused or aborted',
  70: 'an internal error in the station',
};

function usage(): string {
  return [
    'usage: npm run demo [-- --clean]',
    '',
    "Runs the station's main job against s3rver on loopback: no cloud account needed. The temp folder with the",
    "demo's files (config, data directory, drive copy, s3rver's store) is kept and named at the end.",
    '',
    '  --clean   remove the temp folder at the end',
    '  -h, --help',
  ].join('\n');
}

let current: ChildProcess | undefined;
let interrupted: NodeJS.Signals | undefined;

/** The environment of the station's runs: no real AWS account or station settings leak in from ours. */
function stationEnv(configFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('STATION_')) env[k] = v;
  return {
    ...env,
    STATION_CONFIG: configFile,
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

interface RunOptions {
  /** shown after the command, e.g. `< secret.txt` */
  shown?: string;
  /** the text on standard input */
  input?: string;
  /** run without printing the command or its output */
  quiet?: boolean;
}

/**
 * Runs `station ARGS`, printing the command line first and its output as it comes; resolves with the exit code
 * and standard output.
 */
function station(env: NodeJS.ProcessEnv, args: string[], opts: RunOptions = {}): Promise<{ code: number; stdout: string }> {
  if (interrupted) return Promise.reject(new DemoError(`interrupted by ${interrupted}`));
  if (!opts.quiet) console.log(`\n$ station ${args.map(quote).join(' ')}${opts.shown ? ` ${opts.shown}` : ''}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STATION, ...args], {
      cwd: ROOT,
      env,
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', opts.quiet ? 'pipe' : 'inherit'],
    });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!opts.quiet) process.stdout.write(chunk);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on('error', (err) => {
      current = undefined;
      reject(new DemoError(`cannot run station ${args[0]}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      current = undefined;
      if (code === null) {
        reject(new DemoError(`station ${args.slice(0, 2).join(' ')} was killed by ${signal}`));
        return;
      }
      if (opts.quiet && code !== 0) process.stderr.write(stderr);
      resolve({ code, stdout });
    });
  });
}

/** Fails the demo unless the command exited 0. */
function expectOk(what: string, code: number): void {
  if (code !== 0) throw new DemoError(`${what} exited with ${code}${EXIT_MEANINGS[code] ? ` (${EXIT_MEANINGS[code]})` : ''}`);
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function heading(text: string): void {
  console.log(`\n== ${text}`);
}

async function main(argv: string[]): Promise<number> {
  let clean = false;
  for (const arg of argv) {
    if (arg === '--clean') clean = true;
    else if (arg === '-h' || arg === '--help') {
      console.log(usage());
      return 0;
    } else {
      console.error(`demo: unknown argument ${arg}\n\n${usage()}`);
      return 2;
    }
  }

  const manifest = parseYaml(readFileSync(join(ROOT, MANIFEST), 'utf8'), { schema: 'failsafe' }) as Record<string, unknown>;
  const bucket = String(manifest.bucket);
  const logBucket = String(manifest.logBucket);

  const dir = mkdtempSync(join(tmpdir(), 'station-demo-'));
  const configFile = join(dir, 'config.yaml');
  const dataDir = join(dir, 'data');
  const secretFile = join(dir, 'secret.txt');
  const drive = join(dir, 'drive');
  const s3Dir = join(dir, 's3rver');

  let server: S3rverServer | undefined;
  let client: S3Client | undefined;
  let failed = false;
  try {
    heading('set-up');
    server = new S3rver({ address: '127.0.0.1', port: 0, directory: s3Dir, silent: true });
    const { port } = await server.run().catch((err: Error) => {
      server = undefined;
      throw new DemoError(`cannot start s3rver: ${err.message}`);
    });
    const endpoint = `http://127.0.0.1:${port}`;
    console.log(`s3rver (an S3 server in Node) on ${endpoint}, its store in ${s3Dir}`);

    client = new S3Client({
      region: 'us-east-1',
      endpoint,
      credentials: S3_CREDENTIALS,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    for (const name of new Set([bucket, logBucket])) {
      await client.send(new CreateBucketCommand({ Bucket: name })).catch((err: Error) => {
        throw new DemoError(`cannot create bucket ${name} in s3rver: ${err.name}: ${err.message}`);
      });
    }
    console.log(`buckets ${[...new Set([bucket, logBucket])].join(', ')} created (those ${MANIFEST} names)`);

    writeFileSync(configFile, `dataDir: ${dataDir}\ns3:\n  endpoint: ${endpoint}\n`);
    writeFileSync(secretFile, `${SECRET_KEY}\n`, { mode: 0o600 });
    cpSync(join(ROOT, DRIVE), drive, { recursive: true });
    console.log(`the drive: a copy of ${DRIVE} in ${drive}`);
    console.log(`the station's config, ${configFile}:`);
    process.stdout.write(readFileSync(configFile, 'utf8').replace(/^(?=.)/gm, '  '));

    // What a person would type first: the config, and the station's own S3 credentials (s3rver's key pair).
    const env = stationEnv(configFile);
    console.log(`\n$ export STATION_CONFIG=${quote(configFile)}`);
    console.log(`$ export AWS_ACCESS_KEY_ID=${S3_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${S3_CREDENTIALS.secretAccessKey}`);

    expectOk(
      'station account add',
      (await station(env, ['account', 'add', ACCESS_KEY_ID], { input: `${SECRET_KEY}\n`, shown: `< ${quote(relativeToRoot(secretFile))}` })).code,
    );

    const created = await station(env, ['job', 'create', MANIFEST, '--signature-out', relativeToRoot(join(drive, 'SIGNATURE'))]);
    expectOk('station job create', created.code);
    const jobId = created.stdout.split('\n')[0]?.trim() ?? '';
    if (!/^[0-9A-Z]{5}$/i.test(jobId)) throw new DemoError(`station job create printed no job ID on its first line: ${JSON.stringify(created.stdout)}`);

    const load = await station(env, ['load', relativeToRoot(drive)]);
    if (load.code === 3) {
      throw new DemoError(`station load exited with 3 (CompletedWithErrors): the fixture drive is meant to load cleanly; see the import log of job ${jobId}`);
    }
    expectOk('station load', load.code);

    expectOk('station job status', (await station(env, ['job', 'status', jobId])).code);

    // The log's place, as a script reads it.
    const status = await station(env, ['job', 'status', jobId, '--json'], { quiet: true });
    expectOk('station job status --json', status.code);
    const job = JSON.parse(status.stdout) as { logBucket?: string; logKey?: string };
    if (!job.logBucket || !job.logKey) throw new DemoError(`job ${jobId} has no import log after the load: ${status.stdout}`);

    heading(`the import log, fetched back from s3://${job.logBucket}/${job.logKey}`);
    const log = await client.send(new GetObjectCommand({ Bucket: job.logBucket, Key: job.logKey })).catch((err: Error) => {
      throw new DemoError(`cannot fetch the import log s3://${job.logBucket}/${job.logKey}: ${err.name}: ${err.message}`);
    });
    process.stdout.write((await log.Body!.transformToString()).replace(/\r?\n?$/, '\n'));

    heading(`the objects in s3://${bucket}`);
    const rows: string[][] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }));
        rows.push([o.Key!, String(head.ContentLength ?? o.Size ?? ''), head.ContentType ?? '', head.ContentEncoding ?? '']);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    if (rows.length === 0) throw new DemoError(`bucket ${bucket} is empty after the load`);
    printTable(['KEY', 'BYTES', 'CONTENT-TYPE', 'CONTENT-ENCODING'], rows);

    console.log(`\ndemo done: job ${jobId} loaded ${rows.length} objects into s3://${bucket}`);
    return 0;
  } catch (err) {
    failed = true;
    if (interrupted) console.error(`\ndemo interrupted (${interrupted})`);
    else if (err instanceof DemoError) console.error(`\ndemo failed: ${err.message}`);
    else console.error(`\ndemo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return interrupted ? 130 : 1;
  } finally {
    client?.destroy();
    if (server) await server.close().catch((err: Error) => console.error(`demo: stopping s3rver: ${err.message}`));
    if (clean) {
      rmSync(dir, { recursive: true, force: true });
      console.log(`temp folder ${dir} removed`);
    } else {
      (failed ? console.error : console.log)(
        `the demo's files (config.yaml, data/, drive/, s3rver/) are in ${dir}; remove it with: rm -rf ${quote(dir)}`,
      );
    }
  }
}

function relativeToRoot(path: string): string {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) {
    console.log(r.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
  }
}

// Ctrl-C reaches the running station command too (same process group): it stops and the demo ends as a failure,
// through main's clean-up. A signal between commands ends the demo the same way, before the next command.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130); // a second one: out now
    interrupted = signal;
    if (current) current.kill(signal);
  });
}

process.exitCode = await main(process.argv.slice(2));
