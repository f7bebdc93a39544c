/**
 * The demo (npm run demo, via scripts/demo, which builds first): the station as it runs in production, the daemon,
 * on an embedded default.
 *
 * s3rver, an S3 server written in Node, runs in this process on a free loopback port; the station itself runs as
 * subprocesses, each command printed as a person would type it: an account is added, a job is created from
 * fixtures/manifests/good/full.yaml with its SIGNATURE written onto a staging copy of the fixture drive
 * fixtures/drives/seed-example (outside the watched folder), and `station daemon` is started, watching one mount
 * root in the temp folder (no automounting: the machine's real block devices are left alone). Its JSON log lines
 * are shown one readable line each; once it is ready, `station status` shows it with no drives. The drive is then
 * "plugged in": the staging copy is renamed into the mount root, atomically, as a technician's finished copy
 * would appear. `station status` is polled until the daemon has loaded the drive; then the job's status, the
 * import log fetched back from the log bucket and the bucket's objects are shown, and the daemon is stopped with
 * SIGTERM, as systemd would. Everything lives in one temp folder, kept for a look afterwards (`--clean` removes it).
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STATION = join(ROOT, 'dist', 'station', 'main.js');
const MANIFEST = 'fixtures/manifests/good/full.yaml';
const DRIVE = 'fixtures/drives/seed-example';
/** The account of the fixture manifest: AWS's documented example key pair. */
const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
/** s3rver checks signatures against its one built-in key pair. */
const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** How long the daemon may take to log `station ready`. */
const READY_TIMEOUT_MS = 30_000;
/** How long the drive may take, from its plugging in, to be `done`. */
const LOAD_TIMEOUT_MS = 120_000;
/** How long the daemon may take to notice the drive at all: it reacts to a new folder at once. */
const NOTICE_TIMEOUT_MS = 15_000;
const STATUS_POLL_MS = 500;
/** How long a stopping daemon may take to exit: its own bound on settling in-flight work is 60 s. */
const STOP_TIMEOUT_MS = 75_000;
/** Drive stages after which the drive will not become `done` by itself. */
const FAILED_STAGES = new Set(['refused', 'interrupted', 'removed', 'set-aside']);

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
    "Runs the station as it runs in production, `station daemon`, against s3rver on loopback: no cloud account",
    'needed. A drive (a copy of the fixture drive) is plugged in by moving it into the folder the daemon watches;',
    "the daemon loads it. The temp folder with the demo's files (config, data directory, media folder with the",
    "drive, s3rver's store) is kept and named at the end.",
    '',
    '  --clean   remove the temp folder at the end',
    '  -h, --help',
  ].join('\n');
}

let current: ChildProcess | undefined;
/** the daemon, for a second Ctrl-C, which ends the demo at once */
let liveDaemon: DaemonProcess | undefined;
let interrupted: NodeJS.Signals | undefined;
/** Aborted by Ctrl-C or SIGTERM: ends the demo's waits (for the daemon, for the drive) at once. */
const interruption = new AbortController();

/** The environment of the station's runs: no real AWS account, station settings or systemd socket leak in from ours. */
function stationEnv(configFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('AWS_') || k.startsWith('STATION_') || k === 'NOTIFY_SOCKET' || k.startsWith('WATCHDOG_')) continue;
    env[k] = v;
  }
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

// ---- the daemon ------------------------------------------------------------------------------------------------

/** One of the daemon's log lines: pino JSON. */
interface LogLine {
  level?: number;
  msg?: string;
  [field: string]: unknown;
}

/** pino's fields every line has, or that say nothing to a person watching: left out of the readable line. */
const NOISE = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg', 'stack']);
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A log line as a person reads it: `daemon: [WARN] msg key=value ...` (a line that is not JSON, as it is). */
function readable(line: LogLine | string): string {
  if (typeof line === 'string') return `daemon: ${line}`;
  const level = line.level !== undefined && line.level !== 30 ? `${LEVELS[line.level] ?? `level ${line.level}`} ` : '';
  const fields = Object.entries(line)
    .filter(([k, v]) => !NOISE.has(k) && v !== undefined)
    // `drive loading` already says the stage
    .filter(([k, v]) => !(k === 'stage' && line.msg === `drive ${String(v)}`))
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  return `daemon: ${level}${line.msg ?? ''}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** set when the process could not be started at all */
  error?: string;
}

/**
 * `station daemon` as a child process: its JSON log lines (stdout) shown readably as they come, its stderr kept
 * for when something goes wrong.
 */
class DaemonProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  last?: LogLine | string;
  stderr = '';
  exit?: Exit;
  readonly exited: Promise<Exit>;
  private readonly listeners = new Set<() => void>();

  constructor(env: NodeJS.ProcessEnv) {
    // Same process group as the demo: Ctrl-C in the terminal reaches the daemon too, which then stops by itself.
    this.child = spawn(process.execPath, [STATION, 'daemon'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout!, crlfDelay: Infinity }).on('line', (text) => {
      if (text.trim() === '') return;
      let line: LogLine | string = text;
      try {
        const parsed = JSON.parse(text) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) line = parsed as LogLine;
      } catch {
        // not JSON: shown as it is
      }
      if (typeof line !== 'string') this.lines.push(line);
      this.last = line;
      console.log(readable(line));
      this.changed();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        // spawn failed: no 'close' follows
        this.exit ??= { code: null, signal: null, error: err.message };
        this.changed();
        resolve(this.exit);
      });
      this.child.once('close', (code, signal) => {
        this.exit ??= { code, signal };
        this.changed();
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How it ended, for a message; with its stderr when it has any. */
  describeExit(): string {
    const e = this.exit;
    const how = !e ? 'is still running' : e.error ? `could not be started: ${e.error}` : e.code !== null ? `exited with ${e.code}` : `was killed by ${e.signal}`;
    const meaning = e?.code ? (EXIT_MEANINGS[e.code] ? ` (${EXIT_MEANINGS[e.code]})` : '') : '';
    const stderr = this.stderr.trim();
    return `the daemon ${how}${meaning}${stderr ? `; its stderr:\n${stderr.replace(/^/gm, '  ')}` : '; its stderr was empty'}`;
  }

  /**
   * The first log line, seen or to come, that `match` accepts. Fails when the daemon exits first, after
   * `timeoutMs`, or on Ctrl-C.
   */
  waitFor(match: (line: LogLine) => boolean, what: string, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new DemoError(`the daemon did not log ${what} within ${timeoutMs / 1000} s; ${this.describeExit()}`)), timeoutMs);
      const onInterrupt = () => finish(new DemoError(`interrupted by ${interrupted}`));
      const check = () => {
        const found = this.lines.find(match);
        if (found) finish(undefined, found);
        else if (this.exit) finish(new DemoError(`before logging ${what}, ${this.describeExit()}`));
      };
      const finish = (err?: Error, line?: LogLine) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        interruption.signal.removeEventListener('abort', onInterrupt);
        if (err) reject(err);
        else resolve(line!);
      };
      if (interruption.signal.aborted) return onInterrupt();
      interruption.signal.addEventListener('abort', onInterrupt);
      this.listeners.add(check);
      check();
    });
  }

  /** SIGTERM (unless `signal` is false: it has one already), as systemd stops it; SIGKILL if it has not exited after `STOP_TIMEOUT_MS`. */
  async stop(signal = true): Promise<Exit> {
    if (this.exit) return this.exit;
    if (signal) this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      console.error(`demo: the daemon has not exited ${STOP_TIMEOUT_MS / 1000} s after SIGTERM: killing it`);
      this.child.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** One drive in `station status --json`. */
interface DriveStatus {
  drive: string;
  stage: string;
  detail?: string;
  jobId?: string;
  root?: string;
}

/**
 * Polls `station status --json` until the drive at `path` is `done`; shows `station status` plainly once, the
 * first time the drive is seen and not yet done.
 */
async function waitForDrive(env: NodeJS.ProcessEnv, daemon: DaemonProcess, path: string): Promise<DriveStatus> {
  const start = Date.now();
  const deadline = start + LOAD_TIMEOUT_MS;
  let shown = false;
  let last: DriveStatus | undefined;
  for (;;) {
    if (interrupted) throw new DemoError(`interrupted by ${interrupted}`);
    if (daemon.exit) throw new DemoError(`while the drive was loading, ${daemon.describeExit()}`);
    const polled = await station(env, ['status', '--json'], { quiet: true });
    if (polled.code !== 0 && daemon.exit) throw new DemoError(`while the drive was loading, ${daemon.describeExit()}`);
    expectOk('station status --json', polled.code);
    let doc: { drives?: DriveStatus[] };
    try {
      doc = JSON.parse(polled.stdout) as { drives?: DriveStatus[] };
    } catch {
      throw new DemoError(`station status --json printed no JSON: ${JSON.stringify(polled.stdout)}`);
    }
    const drive = (doc.drives ?? []).find((d) => d.drive === path || d.root === path);
    if (drive) {
      last = drive;
      if (drive.stage === 'done') return drive;
      if (FAILED_STAGES.has(drive.stage)) {
        throw new DemoError(`the daemon did not load the drive: stage ${drive.stage}${drive.detail ? `: ${drive.detail}` : ''}`);
      }
      if (!shown) {
        shown = true;
        expectOk('station status', (await station(env, ['status'])).code);
      }
    }
    if (!last && !daemon.lines.some((l) => l.msg === 'drive attached' && l.drive === path) && Date.now() - start >= NOTICE_TIMEOUT_MS) {
      throw new DemoError(`the daemon has not noticed the drive ${NOTICE_TIMEOUT_MS / 1000} s after it was plugged in: no "drive attached" in its log, no drive in station status`);
    }
    if (Date.now() >= deadline) {
      throw new DemoError(
        `the drive was not loaded within ${LOAD_TIMEOUT_MS / 1000} s of being plugged in; ${
          last ? `its stage: ${last.stage}${last.detail ? ` (${last.detail})` : ''}` : 'the daemon never reported it'
        }`,
      );
    }
    await sleep(STATUS_POLL_MS, undefined, { signal: interruption.signal }).catch(() => undefined);
  }
}

// ---- the demo --------------------------------------------------------------------------------------------------

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
  /** the drive being prepared: outside the watched folder, so the daemon sees it only once it is complete */
  const staging = join(dir, 'staging');
  /** the folder the daemon watches, and the drive's place in it once plugged in */
  const media = join(dir, 'media');
  const pluggedIn = join(media, 'drive');
  const s3Dir = join(dir, 's3rver');

  let server: S3rverServer | undefined;
  let client: S3Client | undefined;
  let daemon: DaemonProcess | undefined;
  let plugged = false;
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

    mkdirSync(media);
    // autoMount off: the demo must leave the machine's real block devices alone; a folder appearing under the
    // mount root is a drive all the same.
    writeFileSync(
      configFile,
      [
        `dataDir: ${dataDir}`,
        's3:',
        `  endpoint: ${endpoint}`,
        'drives:',
        `  mountRoots: [${JSON.stringify(media)}]`,
        '  pollIntervalMs: 200',
        '  autoMount: false',
        // any free port: a station on this machine may have the screen's default one
        'screen:',
        '  listen: 127.0.0.1:0',
        '',
      ].join('\n'),
    );
    writeFileSync(secretFile, `${SECRET_KEY}\n`, { mode: 0o600 });
    cpSync(join(ROOT, DRIVE), staging, { recursive: true });
    console.log(`the drive: a copy of ${DRIVE} being prepared in ${staging}, outside the watched folder ${media}`);
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

    const created = await station(env, ['job', 'create', MANIFEST, '--signature-out', relativeToRoot(join(staging, 'SIGNATURE'))]);
    expectOk('station job create', created.code);
    const jobId = created.stdout.split('\n')[0]?.trim() ?? '';
    if (!/^[0-9A-Z]{5}$/i.test(jobId)) throw new DemoError(`station job create printed no job ID on its first line: ${JSON.stringify(created.stdout)}`);

    heading('the station: the daemon, watching for drives');
    console.log('\n$ station daemon &');
    if (interrupted) throw new DemoError(`interrupted by ${interrupted}`);
    daemon = liveDaemon = new DaemonProcess(env);
    await daemon.waitFor((l) => l.msg === 'station ready', '"station ready"', READY_TIMEOUT_MS);
    const screen = daemon.lines.find((l) => l.msg === 'station screen');
    if (screen) console.log(`the station screen (open it in a browser while the demo runs): ${String(screen.url)}`);
    expectOk('station status', (await station(env, ['status'])).code);

    heading('a drive plugged in');
    // A rename is atomic: the daemon sees the whole drive appear at once, as a technician's finished copy.
    console.log(`\n$ mv ${quote(staging)} ${quote(pluggedIn)}`);
    renameSync(staging, pluggedIn);
    plugged = true;
    const done = await waitForDrive(env, daemon, pluggedIn);
    if (done.jobId && done.jobId.toUpperCase() !== jobId.toUpperCase()) {
      throw new DemoError(`the daemon loaded the drive as job ${done.jobId}, not job ${jobId}`);
    }

    heading('loaded');
    expectOk('station status', (await station(env, ['status'])).code);
    expectOk('station job status', (await station(env, ['job', 'status', jobId])).code);

    // The log's place, as a script reads it.
    const status = await station(env, ['job', 'status', jobId, '--json'], { quiet: true });
    expectOk('station job status --json', status.code);
    const job = JSON.parse(status.stdout) as { jobStatus?: string; logBucket?: string; logKey?: string; errorCount?: number };
    if (!job.logBucket || !job.logKey) throw new DemoError(`job ${jobId} has no import log after the load: ${status.stdout}`);
    if (job.jobStatus !== 'Completed') {
      throw new DemoError(`job ${jobId} ended ${job.jobStatus} (${job.errorCount ?? '?'} errors): the fixture drive is meant to load cleanly; see its import log`);
    }

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

    heading('the daemon stopped, as systemd stops it');
    if (interrupted) throw new DemoError(`interrupted by ${interrupted}`);
    console.log(`\n$ kill -TERM ${daemon.pid}`);
    const exit = await daemon.stop();
    if (exit.code !== 0) throw new DemoError(daemon.describeExit());
    const last = daemon.last;
    console.log(`the daemon exited with 0; its last log line: ${last === undefined ? '(none)' : readable(last).replace(/^daemon: /, '')}`);

    console.log(`\ndemo done: the daemon loaded job ${jobId}'s drive, ${rows.length} objects into s3://${bucket}`);
    return 0;
  } catch (err) {
    failed = true;
    if (interrupted) console.error(`\ndemo interrupted (${interrupted})`);
    else if (err instanceof DemoError) console.error(`\ndemo failed: ${err.message}`);
    else console.error(`\ndemo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return interrupted ? 130 : 1;
  } finally {
    // The daemon first: it may still have requests in flight to s3rver.
    if (daemon && !daemon.exit) {
      // After Ctrl-C in the terminal, the daemon has the signal too and is stopping by itself.
      const stopping = daemon.lines.some((l) => l.msg === 'signal received');
      console.error(`demo: ${stopping ? 'waiting for the daemon to stop' : `stopping the daemon (pid ${daemon.pid}) with SIGTERM`}`);
      const exit = await daemon.stop(!stopping);
      if (exit.code !== 0) console.error(`demo: ${daemon.describeExit()}`);
    }
    client?.destroy();
    if (server) await server.close().catch((err: Error) => console.error(`demo: stopping s3rver: ${err.message}`));
    if (clean) {
      rmSync(dir, { recursive: true, force: true });
      console.log(`temp folder ${dir} removed`);
    } else {
      (failed ? console.error : console.log)(
        `the demo's files (config.yaml, data/, ${plugged ? 'media/drive/' : 'staging/'}, s3rver/) are in ${dir}; remove it with: rm -rf ${quote(dir)}`,
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

// Ctrl-C reaches the running station command and the daemon too (same process group): the command stops, the
// daemon stops by itself, and the demo ends as a failure, through main's clean-up. A SIGTERM sent to the demo
// alone ends it the same way; the clean-up stops the daemon.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // a second one: out now, not leaving the daemon behind
      if (liveDaemon && !liveDaemon.exit) liveDaemon.child.kill('SIGTERM');
      process.exit(130);
    }
    interrupted = signal;
    interruption.abort();
    if (current) current.kill(signal);
  });
}

process.exitCode = await main(process.argv.slice(2));
