/**
 * Benchmark driver: the station's `load` against rclone 1.60 (defaults), same tree, same S3 target, tools
 * alternated round by round, medians reported, results written to .bench/results-<timestamp>.json.
 *
 *   npm run bench [-- OPTIONS]            (= node --import tsx bench/run.ts after `npm run build`)
 *
 * Default: the SUITE, every target of issue 6 in one run, then a table of target / measured / PASS|MISS:
 *   large       4×256 MiB to the loopback sink: wall time rclone ÷ station; and station MiB/s ÷ single-core
 *               `md5sum` MiB/s on the same files (md5sum and `cat > /dev/null` timed once per round)
 *   mixed       2×128 MiB + 200×1 MiB + 3,000×16 KiB to the sink: wall time rclone ÷ station
 *   smallfiles  20,000×4 KiB to the sink: files/s station ÷ rclone
 *   rss10x      the station alone on the mixed drive ×10 (10 copies of the mixed tree as hard links: 32,020 files,
 *               5 GiB, no extra disk): its peak RSS ÷ the station's peak RSS on the mixed drive; and the largest peak
 *               RSS of any station run in the suite
 *   rgw         mixed to a Ceph radosgw on loopback (bluestore OSD on a sparse file, started in a temp dir for this
 *               run and wiped after it): wall time rclone ÷ station
 *
 * Options:
 *   --quick              small trees, 1 round, same table (a smoke run, under a minute: not for figures)
 *   --only LIST          suite workloads to run (comma-separated: large,mixed,smallfiles,rss10x,rgw)
 *   --tree NAME|SPEC     one tree instead of the suite (mixed, large, small, smallfiles or e.g. 4x256M), the
 *                        earlier single-tree mode; with --target sink|rgw (default sink)
 *   --rounds N, -n N     rounds per workload (default 5; --quick: 1). rss10x always runs 1 round. Five: one
 *                        tool's wall time on the mixed drive moves ±0.2 s between rounds on this shared VM,
 *                        and a median of three let one bad pair of rounds swing a ratio by ~0.1.
 *   --tools rclone,station   --rclone-args "ARGS"   --sink-port P   --verbose   --no-probe   --no-warmup
 *   env: BENCH_ROUNDS, BENCH_TREE (= --tree), BENCH_TOOLS, BENCH_RCLONE_ARGS, BENCH_STATION_CMD, BENCH_STATION_MAIN,
 *        BENCH_STATION_NODE_ARGS, BENCH_STATION_CONFIG (bench/station.ts),
 *        BENCH_RGW_BLUESTORE_BYTES (size of the sparse OSD file, default 16 GiB)
 *
 * Every run is checked: exit status 0, and the target holds exactly the tree's file count and bytes in that run's
 * bucket (the sink's counters; on radosgw a ListObjectsV2 of the bucket). A failed check stops that workload, the
 * rest of the suite still runs, and the exit status is 1. Targets missed are reported, not failed (exit status 0).
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { buildTree, multiplyTree, type Tree } from './tree.ts';
import { stationCommand, SINK_CREDENTIALS, type StationCommand } from './station.ts';

// The AWS SDK (used here for radosgw buckets) warns about Node 20 on load: not the bench's business. Filtered here
// rather than by AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED, which the tools' environment would inherit.
const emitWarning = process.emitWarning.bind(process) as (...a: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning instanceof Error ? warning.message : warning).startsWith('NodeVersionSupportWarning')) return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

const MiB = 1024 * 1024;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repoRoot);
const benchDir = path.join(repoRoot, '.bench');
fs.mkdirSync(benchDir, { recursive: true });

type Tool = 'rclone' | 'station';
const WORKLOADS = ['large', 'mixed', 'smallfiles', 'rss10x', 'rgw'] as const;
type Workload = (typeof WORKLOADS)[number];

// ------------------------------------------------------------------------------------------------ options

interface Options {
  rounds: number;
  tree: string | null;
  target: 'sink' | 'rgw';
  quick: boolean;
  only: Workload[];
  tools: Tool[];
  verbose: boolean;
  probe: boolean;
  warmup: boolean;
  rcloneArgs: string[];
  sinkPort: number;
}

function parseOptions(argv: string[]): Options {
  let rounds: number | null = process.env.BENCH_ROUNDS ? Number(process.env.BENCH_ROUNDS) : null;
  const o: Options = {
    rounds: 5,
    tree: process.env.BENCH_TREE || null,
    target: 'sink',
    quick: false,
    only: [...WORKLOADS],
    tools: (process.env.BENCH_TOOLS ?? 'rclone,station').split(',') as Tool[],
    verbose: process.env.BENCH_VERBOSE === '1',
    probe: true,
    warmup: true,
    rcloneArgs: (process.env.BENCH_RCLONE_ARGS ?? '').split(/\s+/).filter(Boolean),
    sinkPort: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--rounds':
      case '-n':
        rounds = Number(value());
        break;
      case '--tree':
        o.tree = value();
        break;
      case '--target': {
        const t = value();
        if (t !== 'sink' && t !== 'rgw') throw new Error(`--target must be sink or rgw`);
        o.target = t;
        break;
      }
      case '--quick':
        o.quick = true;
        break;
      case '--only':
        o.only = value().split(',').map((w) => w.trim()) as Workload[];
        for (const w of o.only) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} (${WORKLOADS.join(', ')})`);
        break;
      case '--tools':
        o.tools = value().split(',') as Tool[];
        break;
      case '--rclone-args':
        o.rcloneArgs = value().split(/\s+/).filter(Boolean);
        break;
      case '--sink-port':
        o.sinkPort = Number(value());
        break;
      case '--verbose':
      case '-v':
        o.verbose = true;
        break;
      case '--no-probe':
        o.probe = false;
        break;
      case '--no-warmup':
        o.warmup = false;
        break;
      case '--help':
      case '-h':
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a} (try --help)`);
    }
  }
  o.rounds = rounds ?? (o.quick ? 1 : 5);
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error(`--rounds must be a positive integer`);
  for (const t of o.tools) if (t !== 'rclone' && t !== 'station') throw new Error(`unknown tool ${t}`);
  return o;
}

// ------------------------------------------------------------------------------------------------ S3 targets

/** Where the tools upload: the loopback discard sink, or a radosgw. */
interface Target {
  kind: 'sink' | 'rgw';
  endpoint: string;
  credentials: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  rcloneProvider: 'Other' | 'Ceph';
  /** CPU seconds the server processes have used so far, and the error answers so far (sink only). */
  snapshot(): Promise<{ cpuS: number; errors: Record<string, number> }>;
  /** Make the bucket(s) a run needs (radosgw: `bucket`, and `bucket-logs` for the station's import log). */
  prepareBucket(bucket: string, tool: Tool): Promise<void>;
  /** Objects and bytes now in the bucket. */
  contents(bucket: string): Promise<{ objects: number; bytes: number; openMultipartUploads: number | null; counters: Record<string, number> | null }>;
  /** After a checked run (the sink forgets the bucket). */
  release(bucket: string): Promise<void>;
  warnings(): Promise<Record<string, number> | null>;
  stop(): void;
}

interface GlobalStats {
  cpuUserUs: number;
  cpuSystemUs: number;
  maxRssKiB: number;
  requests: number;
  errors: Record<string, number>;
  warnings: Record<string, number>;
}

interface BucketStats {
  objects: number;
  bytes: number;
  openMultipartUploads: number;
  counters: Record<string, number>;
}

async function startSink(port: number): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/sink.ts'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the sink did not start within 20 s')), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /SINK_ENDPOINT=(\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`the sink exited with status ${code} before listening`)));
  });
  child.stdout.resume();
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`\nFATAL: the sink exited unexpectedly (status ${code}, signal ${signal})`);
      process.exit(1);
    }
  });
  const getJson = async <T>(p: string): Promise<T> => {
    const r = await fetch(endpoint + p);
    if (!r.ok) throw new Error(`sink ${p}: HTTP ${r.status}`);
    return (await r.json()) as T;
  };
  return {
    kind: 'sink',
    endpoint,
    credentials: { ...SINK_CREDENTIALS },
    rcloneProvider: 'Other',
    async snapshot() {
      const g = await getJson<GlobalStats>('/__stats');
      return { cpuS: (g.cpuUserUs + g.cpuSystemUs) / 1e6, errors: g.errors };
    },
    async prepareBucket() {
      /* the sink accepts any bucket */
    },
    async contents(b) {
      const s = await getJson<BucketStats>(`/__stats?bucket=${encodeURIComponent(b)}`);
      return { objects: s.objects, bytes: s.bytes, openMultipartUploads: s.openMultipartUploads, counters: s.counters };
    },
    async release(b) {
      await fetch(`${endpoint}/__bucket?bucket=${encodeURIComponent(b)}`, { method: 'DELETE' });
    },
    async warnings() {
      return (await getJson<GlobalStats>('/__stats')).warnings;
    },
    stop() {
      stopping = true;
      child.kill('SIGTERM');
    },
  };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (0 when it is gone). */
function procCpuS(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of proc(5)
  } catch {
    return 0;
  }
}

function freePortPair(): number {
  const isFree = (p: number) => spawnSync('bash', ['-c', `! (exec 3<>/dev/tcp/127.0.0.1/${p}) 2>/dev/null`]).status === 0;
  for (let i = 0; i < 100; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000);
    if (isFree(p) && isFree(p + 1)) return p;
  }
  throw new Error('no free port pair found for radosgw');
}

/**
 * A throw-away Ceph cluster (mon + bluestore OSD on a sparse file + radosgw) in a new temp dir, on free ports:
 * test/s3/rgw-start.sh, stopped and wiped by stop(). Buckets are created with the AWS SDK; contents() lists them.
 */
async function startRgw(log: (s: string) => void): Promise<Target> {
  const s3dir = path.join(repoRoot, 'test', 's3');
  const inst = spawnSync('bash', [path.join(s3dir, 'install-rgw.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (inst.status !== 0) throw new Error('test/s3/install-rgw.sh failed: radosgw is not available');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'station-bench-rgw.'));
  const cluster = path.join(tmp, 'cluster');
  const env = {
    ...process.env,
    CEPH_OBJECTSTORE: 'bluestore',
    BLUESTORE_BYTES: process.env.BENCH_RGW_BLUESTORE_BYTES ?? String(16 * 1024 * MiB),
  };
  const stop = () => {
    spawnSync('bash', [path.join(s3dir, 'rgw-stop.sh'), cluster, '--wipe'], { stdio: ['ignore', 'ignore', 'inherit'] });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const t0 = performance.now();
  let out = '';
  let lastErr = '';
  for (let attempt = 1; attempt <= 2 && out === ''; attempt++) {
    const port = freePortPair();
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', [path.join(s3dir, 'rgw-start.sh'), cluster, String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      child.stdout.on('data', (d: Buffer) => (so += d.toString()));
      child.stderr.on('data', (d: Buffer) => (se += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: so, stderr: se }));
    });
    if (r.code === 0) out = r.stdout;
    else lastErr = r.stderr;
  }
  if (out === '') {
    stop();
    throw new Error(`radosgw did not start (test/s3/rgw-start.sh):\n${tail(lastErr, 15)}`);
  }
  const val = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1] ?? '';
  const endpoint = val('S3_ENDPOINT');
  const credentials = {
    AWS_ACCESS_KEY_ID: val('AWS_ACCESS_KEY_ID'),
    AWS_SECRET_ACCESS_KEY: val('AWS_SECRET_ACCESS_KEY'),
    AWS_REGION: val('AWS_REGION') || 'us-east-1',
  };
  log(`radosgw (bluestore OSD, sparse ${(Number(env.BLUESTORE_BYTES) / 1024 / MiB).toFixed(0)} GiB) at ${endpoint}, ` +
    `started in ${((performance.now() - t0) / 1000).toFixed(1)} s, cluster in ${cluster}`);
  const pids = fs
    .readdirSync(path.join(cluster, 'pids'))
    .map((n) => Number(fs.readFileSync(path.join(cluster, 'pids', n), 'utf8').trim()))
    .filter((p) => Number.isInteger(p) && p > 0);
  const client = new S3Client({
    endpoint,
    region: credentials.AWS_REGION,
    credentials: { accessKeyId: credentials.AWS_ACCESS_KEY_ID, secretAccessKey: credentials.AWS_SECRET_ACCESS_KEY },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    kind: 'rgw',
    endpoint,
    credentials,
    rcloneProvider: 'Ceph',
    async snapshot() {
      return { cpuS: pids.reduce((a, p) => a + procCpuS(p), 0), errors: {} };
    },
    async prepareBucket(bucket, tool) {
      for (const b of tool === 'station' ? [bucket, `${bucket}-logs`] : [bucket]) {
        await client.send(new CreateBucketCommand({ Bucket: b }));
      }
    },
    async contents(bucket) {
      let objects = 0;
      let bytes = 0;
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }));
        for (const o of r.Contents ?? []) {
          objects++;
          bytes += o.Size ?? 0;
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token !== undefined);
      return { objects, bytes, openMultipartUploads: null, counters: null };
    },
    async release() {
      /* kept: the whole cluster is wiped at the end */
    },
    async warnings() {
      return null;
    },
    stop() {
      client.destroy();
      stop();
    },
  };
}

// ------------------------------------------------------------------------------------------------ probes

/** Two threads hashing with MD5 at once: shows how much CPU the machine gives right now (~800 MiB/s per core). */
async function cpuProbe(): Promise<number> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { createHash } = require('node:crypto');
    const buf = Buffer.alloc(16 * 1024 * 1024, 1);
    parentPort.once('message', () => {
      const h = createHash('md5');
      for (let i = 0; i < 12; i++) h.update(buf);
      h.digest();
      parentPort.postMessage('done');
    });`;
  const workers = [0, 1].map(() => new Worker(code, { eval: true }));
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          w.once('message', () => resolve());
          w.postMessage('go');
        }),
    ),
  );
  const s = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  return (2 * 12 * 16) / s;
}

function warmTree(tree: Tree): number {
  const t0 = performance.now();
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (const f of tree.list) {
    const fd = fs.openSync(path.join(tree.dir, f.rel), 'r');
    try {
      while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
  return (performance.now() - t0) / 1000;
}

/**
 * The physical reference: one `md5sum` process (one core) and one `cat > /dev/null` over all the tree's files,
 * from the page cache. MiB/s of wall time; md5sum's output is checked to have one line per file.
 */
async function referenceRates(tree: Tree): Promise<{ md5sumMiBps: number; catMiBps: number }> {
  const files = tree.list.map((f) => path.join(tree.dir, f.rel));
  const timed = async (cmd: string, toDevNull: boolean): Promise<number> => {
    const devnull = toDevNull ? fs.openSync('/dev/null', 'w') : null;
    const t0 = performance.now();
    const child = spawn(cmd, files, { stdio: ['ignore', devnull ?? 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const s = (performance.now() - t0) / 1000;
    if (devnull !== null) fs.closeSync(devnull);
    if (code !== 0) throw new BenchFailure(`${cmd} over the tree: exit ${code}: ${err.trim()}`);
    if (!toDevNull && out.trim().split('\n').length !== files.length) throw new BenchFailure(`${cmd}: not one line per file`);
    return tree.bytes / MiB / s;
  };
  return { md5sumMiBps: await timed('md5sum', false), catMiBps: await timed('cat', true) };
}

// ------------------------------------------------------------------------------------------------ running a tool

interface RunResult {
  tool: Tool;
  round: number;
  bucket: string;
  wallS: number;
  timeWallS: number | null;
  maxRssKiB: number | null;
  userS: number | null;
  sysS: number | null;
  serverCpuS: number;
  mibPerS: number;
  filesPerS: number;
  objects: number;
  bytes: number;
  sinkCounters: Record<string, number> | null;
  sinkErrorsDuringRun: Record<string, number>;
}

class BenchFailure extends Error {}

function tail(s: string, lines: number): string {
  return s.split('\n').slice(-lines).join('\n');
}

async function runTool(
  tool: Tool,
  round: number,
  command: StationCommand,
  bucket: string,
  tree: Tree,
  target: Target,
  verbose: boolean,
): Promise<RunResult> {
  const timeFile = path.join(benchDir, `time-${process.pid}.txt`);
  fs.rmSync(timeFile, { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  for (const [k, v] of Object.entries(command.env)) env[k] = v;
  for (const k of command.unsetEnv ?? []) delete env[k];
  const before = await target.snapshot();
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, command.cmd, ...command.args], {
    cwd: command.cwd ?? repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer, stream: NodeJS.WriteStream) => {
    if (verbose) stream.write(d);
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout.on('data', (d: Buffer) => keep(d, process.stdout));
  child.stderr.on('data', (d: Buffer) => keep(d, process.stderr));
  const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const wallS = (performance.now() - t0) / 1000;
  const after = await target.snapshot();
  const stats = await target.contents(bucket);

  let timeLine = '';
  try {
    timeLine = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    /* no time output */
  }
  fs.rmSync(timeFile, { force: true });
  const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(timeLine);

  const errorsDuring: Record<string, number> = {};
  for (const [code, n] of Object.entries(after.errors)) {
    const d = n - (before.errors[code] ?? 0);
    if (d > 0) errorsDuring[code] = d;
  }

  const problems: string[] = [];
  const where = target.kind === 'sink' ? 'the sink' : 'radosgw (ListObjectsV2)';
  if (status.code !== 0) problems.push(`exit status ${status.code ?? 'none'}${status.signal ? ` (signal ${status.signal})` : ''}`);
  if (stats.objects !== tree.files) problems.push(`${where} holds ${stats.objects} objects, the tree has ${tree.files} files`);
  if (stats.bytes !== tree.bytes) problems.push(`${where} holds ${stats.bytes} bytes, the tree has ${tree.bytes}`);
  if (problems.length > 0) {
    throw new BenchFailure(
      `${tool} round ${round} on ${target.kind} FAILED: ${problems.join('; ')}\n` +
        `  command: ${command.cmd} ${command.args.map((a) => JSON.stringify(a)).join(' ')}\n` +
        (target.kind === 'sink'
          ? `  sink errors during the run: ${JSON.stringify(errorsDuring)}; bucket counters: ${JSON.stringify(stats.counters)}\n`
          : '') +
        `  last output:\n${tail(out, 30).replace(/^/gm, '    | ')}`,
    );
  }
  await target.release(bucket);
  return {
    tool,
    round,
    bucket,
    wallS,
    timeWallS: m ? Number(m[1]) : null,
    maxRssKiB: m ? Number(m[2]) : null,
    userS: m ? Number(m[3]) : null,
    sysS: m ? Number(m[4]) : null,
    serverCpuS: after.cpuS - before.cpuS,
    mibPerS: tree.bytes / MiB / wallS,
    filesPerS: tree.files / wallS,
    objects: stats.objects,
    bytes: stats.bytes,
    sinkCounters: stats.counters,
    sinkErrorsDuringRun: errorsDuring,
  };
}

function rcloneCommand(tree: Tree, target: Target, bucket: string, extra: string[]): StationCommand {
  const emptyConf = path.join(benchDir, 'rclone-empty.conf');
  if (!fs.existsSync(emptyConf)) fs.writeFileSync(emptyConf, '');
  return {
    cmd: 'rclone',
    args: ['copy', tree.dir, `dst:${bucket}`, ...extra],
    env: {
      RCLONE_CONFIG: emptyConf,
      RCLONE_CONFIG_DST_TYPE: 's3',
      RCLONE_CONFIG_DST_PROVIDER: target.rcloneProvider,
      RCLONE_CONFIG_DST_ENV_AUTH: 'false',
      RCLONE_CONFIG_DST_ENDPOINT: target.endpoint,
      RCLONE_CONFIG_DST_ACCESS_KEY_ID: target.credentials.AWS_ACCESS_KEY_ID,
      RCLONE_CONFIG_DST_SECRET_ACCESS_KEY: target.credentials.AWS_SECRET_ACCESS_KEY,
      RCLONE_CONFIG_DST_REGION: target.credentials.AWS_REGION,
      RCLONE_CONFIG_DST_FORCE_PATH_STYLE: 'true',
    },
    unsetEnv: ['AWS_CA_BUNDLE'], // rclone fails on this machine's AWS_CA_BUNDLE (FIELD-NOTES)
  };
}

// ------------------------------------------------------------------------------------------------ statistics / output

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

interface Summary {
  tool: string;
  runs: number;
  medianWallS: number;
  minWallS: number;
  maxWallS: number;
  mibPerS: number;
  filesPerS: number;
  medianMaxRssMiB: number | null;
  maxMaxRssMiB: number | null;
  medianCpuS: number | null;
  medianServerCpuS: number;
}

function summarize(tool: string, runs: RunResult[], tree: Tree): Summary {
  const wall = median(runs.map((r) => r.wallS));
  const rss = runs.flatMap((r) => (r.maxRssKiB === null ? [] : [r.maxRssKiB / 1024]));
  const cpu = runs.flatMap((r) => (r.userS === null || r.sysS === null ? [] : [r.userS + r.sysS]));
  return {
    tool,
    runs: runs.length,
    medianWallS: wall,
    minWallS: Math.min(...runs.map((r) => r.wallS)),
    maxWallS: Math.max(...runs.map((r) => r.wallS)),
    mibPerS: tree.bytes / MiB / wall,
    filesPerS: tree.files / wall,
    medianMaxRssMiB: rss.length ? median(rss) : null,
    maxMaxRssMiB: rss.length ? Math.max(...rss) : null,
    medianCpuS: cpu.length ? median(cpu) : null,
    medianServerCpuS: median(runs.map((r) => r.serverCpuS)),
  };
}

/** Columns before `left` are left-aligned, the rest right-aligned. */
function table(rows: string[][], left = 1): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

function runLine(r: RunResult, server: string): string {
  return (
    `  round ${r.round} ${r.tool.padEnd(7)} ${f(r.wallS, 2).padStart(7)} s  ${f(r.mibPerS).padStart(7)} MiB/s  ` +
    `${f(r.filesPerS, r.filesPerS < 100 ? 2 : 0).padStart(6)} files/s  RSS ${f(r.maxRssKiB === null ? null : r.maxRssKiB / 1024).padStart(6)} MiB  ` +
    `CPU ${f(r.userS === null || r.sysS === null ? null : r.userS + r.sysS, 2)} s  ${server} CPU ${f(r.serverCpuS, 2)} s  ` +
    `[${r.objects} objects, ${r.bytes} bytes: ok]`
  );
}

function describeCounters(c: Record<string, number>): string {
  const bodies = (c.bodiesWithContentMd5 ?? 0) + (c.bodiesWithoutContentMd5 ?? 0);
  return (
    `${c.putObject} PutObject, ${c.uploadPart} UploadPart (${c.completeMultipart} multipart), ${c.headObject} HeadObject, ` +
    `${c.list} List; Content-MD5 on ${c.bodiesWithContentMd5}/${bodies} bodies; ` +
    `payload ${c.unsignedPayload} unsigned / ${c.signedPayload} signed; ${c.connections} connections`
  );
}

// ------------------------------------------------------------------------------------------------ one comparison

interface Comparison {
  label: string;
  target: 'sink' | 'rgw';
  tree: { name: string; dir: string; files: number; bytes: number };
  rounds: number;
  tools: Tool[];
  cpuProbeMiBps: number[];
  runs: RunResult[];
  summaries: Summary[];
  /** rclone wall ÷ station wall of each round (= station files/s ÷ rclone files/s) */
  perRoundRclonePerStation: number[];
  /** median of perRoundRclonePerStation: the figure the target rows use */
  rclonePerStation: number | null;
  /** median rclone wall ÷ median station wall */
  rclonePerStationOfMedians: number | null;
  /** per-round reference rates (large workload) */
  reference: { round: number; md5sumMiBps: number; catMiBps: number }[];
  stationSkipped: string[];
  failure: string | null;
}

interface CompareArgs {
  label: string;
  tree: Tree;
  target: Target;
  rounds: number;
  tools: Tool[];
  opts: Options;
  runsDir: string;
  runId: string;
  /** also time md5sum and cat over the tree in each round */
  reference?: boolean;
}

async function compare(a: CompareArgs): Promise<Comparison> {
  const { tree, target, opts } = a;
  const server = target.kind === 'sink' ? 'sink' : 'rgw';
  console.log(`\n=== ${a.label}: ${a.rounds} round(s), ${a.tools.join(' + ')} → ${target.kind} (${target.endpoint})`);
  if (opts.warmup) console.log('page cache: the tree is read before every run, so each meets it warm');
  const runs: RunResult[] = [];
  const probes: number[] = [];
  const skipped: string[] = [];
  const reference: Comparison['reference'] = [];
  const countersShown = new Set<string>();
  let failure: string | null = null;
  const tag = a.label.replace(/[^a-z0-9]+/gi, '').toLowerCase().slice(0, 10);
  try {
    for (let round = 1; round <= a.rounds; round++) {
      if (opts.probe) {
        const p = await cpuProbe();
        probes.push(p);
        console.log(`round ${round}: CPU probe, MD5 on 2 threads: ${p.toFixed(0)} MiB/s (~800 MiB/s per free core)`);
      } else {
        console.log(`round ${round}:`);
      }
      const order = round % 2 === 1 ? a.tools : [...a.tools].reverse();
      for (const tool of order) {
        const bucket = `bench-${tag}-${tool}-${a.runId}-r${round}`.toLowerCase();
        let command: StationCommand | null;
        if (tool === 'rclone') {
          command = rcloneCommand(tree, target, bucket, opts.rcloneArgs);
        } else {
          const workDir = path.join(a.runsDir, `${tag}-station-r${round}`);
          fs.rmSync(workDir, { recursive: true, force: true });
          fs.mkdirSync(workDir, { recursive: true });
          command = stationCommand(tree.dir, target.endpoint, {
            bucket,
            round,
            workDir,
            repoRoot,
            files: tree.files,
            bytes: tree.bytes,
            credentials: target.credentials,
          });
          if (command === null) {
            if (skipped.length === 0) {
              console.log('  station: station load not available yet: skipped (fill in bench/station.ts, or set BENCH_STATION_CMD)');
            }
            skipped.push(`round ${round}`);
            continue;
          }
        }
        await target.prepareBucket(bucket, tool);
        // rclone drops from the page cache what it has read (posix_fadvise DONTNEED, backend/local): without this
        // read, a run right after rclone's read the tree from disk (20,000 × 4 KiB: 6.6 s instead of 4.6).
        if (opts.warmup) {
          const s = warmTree(tree);
          if (opts.verbose) console.log(`  page cache: tree read in ${s.toFixed(2)} s`);
        }
        await new Promise((r) => setTimeout(r, 300)); // let the server settle (GC) between runs
        const r = await runTool(tool, round, command, bucket, tree, target, opts.verbose);
        runs.push(r);
        console.log(runLine(r, server));
        if ((opts.verbose || !countersShown.has(tool)) && r.sinkCounters !== null) {
          countersShown.add(tool);
          console.log(`    sink saw: ${describeCounters(r.sinkCounters)}`);
          if (Object.keys(r.sinkErrorsDuringRun).length > 0) {
            console.log(`    sink error answers during the run: ${JSON.stringify(r.sinkErrorsDuringRun)}`);
          }
        }
        if (tool === 'station') fs.rmSync(path.join(a.runsDir, `${tag}-station-r${round}`), { recursive: true, force: true });
      }
      if (a.reference) {
        if (opts.warmup) warmTree(tree); // after rclone, md5sum and cat would read from disk (see above)
        const ref = await referenceRates(tree);
        reference.push({ round, ...ref });
        console.log(`  round ${round} reference: md5sum (1 core) ${ref.md5sumMiBps.toFixed(0)} MiB/s, cat > /dev/null ${ref.catMiBps.toFixed(0)} MiB/s`);
      }
    }
  } catch (err) {
    if (!(err instanceof BenchFailure)) throw err;
    failure = err.message;
  }

  const summaries = a.tools
    .map((t) => ({ t, rs: runs.filter((r) => r.tool === t) }))
    .filter((x) => x.rs.length > 0)
    .map((x) => summarize(x.t, x.rs, tree));
  console.log(
    `tree "${tree.name}": ${tree.files.toLocaleString('en')} files, ${(tree.bytes / MiB).toFixed(1)} MiB; ` +
      `medians of ${a.rounds} round(s), tools alternated`,
  );
  if (summaries.length > 0) {
    const rows = [
      ['tool', 'runs', 'wall s', 'min–max s', 'MiB/s', 'files/s', 'peak RSS MiB', 'CPU s', `${server} CPU s`],
      ...summaries.map((s) => [
        s.tool,
        String(s.runs),
        f(s.medianWallS, 2),
        `${f(s.minWallS, 2)}–${f(s.maxWallS, 2)}`,
        f(s.mibPerS),
        f(s.filesPerS, s.filesPerS < 100 ? 2 : 0),
        s.runs > 1 ? `${f(s.medianMaxRssMiB, 0)} (max ${f(s.maxMaxRssMiB, 0)})` : f(s.maxMaxRssMiB, 0),
        f(s.medianCpuS, 2),
        f(s.medianServerCpuS, 2),
      ]),
    ];
    console.log(table(rows));
  }
  if (reference.length > 0) {
    console.log(
      `reference (same files, page cache): md5sum ${f(median(reference.map((r) => r.md5sumMiBps)), 0)} MiB/s, ` +
        `cat ${f(median(reference.map((r) => r.catMiBps)), 0)} MiB/s (medians)`,
    );
  }
  const perRound: number[] = [];
  for (let round = 1; round <= a.rounds; round++) {
    const st = runs.find((r) => r.tool === 'station' && r.round === round);
    const rc = runs.find((r) => r.tool === 'rclone' && r.round === round);
    if (st && rc) perRound.push(rc.wallS / st.wallS);
  }
  const st = summaries.find((s) => s.tool === 'station');
  const rc = summaries.find((s) => s.tool === 'rclone');
  const ofMedians = st && rc ? rc.medianWallS / st.medianWallS : null;
  if (perRound.length > 0) {
    console.log(
      `rclone wall ÷ station wall: ${f(median(perRound), 2)}× (median of per-round ratios [${perRound.map((x) => x.toFixed(2)).join(', ')}]; ` +
        `of medians ${f(ofMedians, 2)}×)`,
    );
  }
  if (failure !== null) console.log(`FAILED: ${failure.split('\n')[0]}`);
  return {
    label: a.label,
    target: target.kind,
    tree: { name: tree.name, dir: tree.dir, files: tree.files, bytes: tree.bytes },
    rounds: a.rounds,
    tools: a.tools,
    cpuProbeMiBps: probes,
    runs,
    summaries,
    perRoundRclonePerStation: perRound,
    rclonePerStation: perRound.length ? median(perRound) : null,
    rclonePerStationOfMedians: ofMedians,
    reference,
    stationSkipped: skipped,
    failure,
  };
}

// ------------------------------------------------------------------------------------------------ the suite

interface TargetRow {
  id: string;
  workload: string;
  measure: string;
  value: number | null;
  unit: string;
  target: string;
  /** null: not measured (failed or skipped) */
  pass: boolean | null;
  detail: string;
}

const SUITE_TREES = {
  full: { large: 'large', mixed: 'mixed', smallfiles: '20000x4K', rssFactor: 10 },
  // quick: one file above the station's 200 MiB multipart threshold, a small mixed tree (×10 for the RSS row)
  quick: { large: '1x208M', mixed: '1x8M,10x1M,300x16K', smallfiles: '1000x4K', rssFactor: 10 },
};

function stationRuns(c: Comparison | undefined): RunResult[] {
  return c?.runs.filter((r) => r.tool === 'station') ?? [];
}

function maxRssMiB(runs: RunResult[]): number | null {
  const xs = runs.flatMap((r) => (r.maxRssKiB === null ? [] : [r.maxRssKiB / 1024]));
  return xs.length ? Math.max(...xs) : null;
}

function ratioRow(
  id: string,
  workload: string,
  measure: string,
  min: number,
  c: Comparison | undefined,
  error: string | undefined,
): TargetRow {
  const v = c?.rclonePerStation ?? null;
  const rounds = c?.perRoundRclonePerStation ?? [];
  return {
    id,
    workload,
    measure,
    value: v,
    unit: '×',
    target: `≥ ${min}`,
    pass: v === null || c?.failure ? null : v >= min,
    detail:
      error ??
      (c?.failure
        ? `FAILED: ${c.failure.split('\n')[0]}`
        : rounds.length
          ? `per round ${rounds.map((x) => x.toFixed(2)).join(', ')}; station ${f(c?.summaries.find((s) => s.tool === 'station')?.medianWallS, 2)} s, rclone ${f(c?.summaries.find((s) => s.tool === 'rclone')?.medianWallS, 2)} s`
          : 'not measured'),
  };
}

async function suite(opts: Options, stamp: string, runId: string, rcloneVersion: string | null): Promise<{ results: object; ok: boolean }> {
  const trees = opts.quick ? SUITE_TREES.quick : SUITE_TREES.full;
  const runsDir = path.join(benchDir, `runs-${stamp}`);
  const comparisons: Partial<Record<Workload, Comparison>> = {};
  const errors: Partial<Record<Workload, string>> = {};
  const want = (w: Workload) => opts.only.includes(w);
  const tools = opts.tools;

  console.log(
    `suite${opts.quick ? ' (QUICK: small trees, not for figures)' : ''}: ${opts.only.join(', ')}; ${opts.rounds} round(s) each; ` +
      `trees: large ${trees.large}, mixed ${trees.mixed}, smallfiles ${trees.smallfiles}, rss ×${trees.rssFactor} of mixed`,
  );

  const guarded = async (w: Workload, fn: () => Promise<Comparison>) => {
    try {
      comparisons[w] = await fn();
      if (comparisons[w]!.failure !== null) errors[w] = `FAILED: ${comparisons[w]!.failure!.split('\n')[0]}`;
    } catch (err) {
      errors[w] = `FAILED: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
      console.error(`\n${w} FAILED: ${err instanceof Error ? (err instanceof BenchFailure ? err.message : err.stack) : String(err)}`);
    }
  };

  let mixedTree: Tree | null = null;
  const sinkNeeded = (['large', 'mixed', 'smallfiles', 'rss10x'] as Workload[]).some(want);
  const sink = sinkNeeded ? await startSink(opts.sinkPort) : null;
  let rgw: Target | null = null;
  const stopAll = () => {
    sink?.stop();
    rgw?.stop();
    rgw = null;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      stopAll();
      process.exit(130);
    });
  }
  try {
    if (sink) console.log(`sink: ${sink.endpoint}`);
    const common = { target: sink!, rounds: opts.rounds, tools, opts, runsDir, runId };
    if (want('large')) {
      await guarded('large', async () =>
        compare({ ...common, label: 'large', tree: buildTree(trees.large), reference: true }),
      );
    }
    if (want('mixed')) {
      await guarded('mixed', async () => {
        mixedTree = buildTree(trees.mixed);
        return compare({ ...common, label: 'mixed', tree: mixedTree });
      });
    }
    if (want('smallfiles')) {
      await guarded('smallfiles', async () => compare({ ...common, label: 'smallfiles', tree: buildTree(trees.smallfiles) }));
    }
    if (want('rss10x')) {
      await guarded('rss10x', async () => {
        mixedTree ??= buildTree(trees.mixed);
        const big = multiplyTree(mixedTree, trees.rssFactor);
        try {
          return await compare({ ...common, label: `rss10x`, tree: big, rounds: 1, tools: ['station'] });
        } finally {
          fs.rmSync(big.dir, { recursive: true, force: true });
        }
      });
    }
    sink?.stop();
    if (want('rgw')) {
      await guarded('rgw', async () => {
        mixedTree ??= buildTree(trees.mixed);
        console.log('');
        rgw = await startRgw(console.log);
        try {
          return await compare({ ...common, target: rgw, label: 'rgw mixed', tree: mixedTree });
        } finally {
          rgw.stop();
          rgw = null;
          console.log('radosgw stopped and wiped');
        }
      });
    }
  } finally {
    stopAll();
  }

  // ---- the target table
  const c = comparisons;
  const rows: TargetRow[] = [];
  rows.push(ratioRow('large', `large files (${trees.large})`, 'wall time, rclone ÷ station, sink', 1.6, c.large, errors.large));
  rows.push(ratioRow('mixed', `mixed drive (${trees.mixed})`, 'wall time, rclone ÷ station, sink', 1.3, c.mixed, errors.mixed));
  rows.push(ratioRow('smallfiles', `small files (${trees.smallfiles})`, 'files/s, station ÷ rclone, sink', 1.5, c.smallfiles, errors.smallfiles));
  {
    const perRound: number[] = [];
    for (const ref of c.large?.reference ?? []) {
      const st = c.large!.runs.find((r) => r.tool === 'station' && r.round === ref.round);
      if (st) perRound.push(st.mibPerS / ref.md5sumMiBps);
    }
    const v = perRound.length ? median(perRound) : null;
    const ref = c.large?.reference ?? [];
    rows.push({
      id: 'md5sum',
      workload: `large files (${trees.large})`,
      measure: 'station MiB/s ÷ single-core md5sum MiB/s',
      value: v,
      unit: '×',
      target: '≥ 0.5',
      pass: v === null || c.large?.failure ? null : v >= 0.5,
      detail:
        errors.large ??
        (v === null
          ? 'not measured'
          : `per round ${perRound.map((x) => x.toFixed(2)).join(', ')}; station ${f(c.large!.summaries.find((s) => s.tool === 'station')?.mibPerS, 0)} MiB/s, ` +
            `md5sum ${f(median(ref.map((r) => r.md5sumMiBps)), 0)} MiB/s, cat ${f(median(ref.map((r) => r.catMiBps)), 0)} MiB/s`),
    });
  }
  {
    const all = (Object.entries(c) as [Workload, Comparison][]).flatMap(([w, cmp]) => stationRuns(cmp).map((r) => ({ w, r })));
    const withRss = all.filter((x) => x.r.maxRssKiB !== null);
    const top = withRss.length ? withRss.reduce((a, b) => (b.r.maxRssKiB! > a.r.maxRssKiB! ? b : a)) : null;
    const v = top ? top.r.maxRssKiB! / 1024 : null;
    rows.push({
      id: 'rss',
      workload: 'any drive (every station run of this suite)',
      measure: 'peak RSS of the station process',
      value: v,
      unit: 'MiB',
      target: '≤ 300',
      pass: v === null ? null : v <= 300,
      detail:
        top === null
          ? 'not measured'
          : `largest: ${top.w} round ${top.r.round}; per workload ` +
            (Object.entries(c) as [Workload, Comparison][])
              .filter(([, cmp]) => stationRuns(cmp).length > 0)
              .map(([w, cmp]) => `${w} ${f(maxRssMiB(stationRuns(cmp)), 0)}`)
              .join(', '),
    });
    const base = maxRssMiB(stationRuns(c.mixed));
    const big = maxRssMiB(stationRuns(c.rss10x));
    const ratio = base !== null && big !== null ? big / base : null;
    rows.push({
      id: 'rss10x',
      workload: `mixed ×${trees.rssFactor} (hard links) vs mixed`,
      measure: 'station peak RSS, 10× drive ÷ drive',
      value: ratio,
      unit: '×',
      target: '≤ 1.10',
      pass: ratio === null ? null : ratio <= 1.1,
      detail:
        errors.rss10x ??
        (ratio === null
          ? `not measured${base === null ? ' (needs the mixed workload)' : ''}`
          : `${f(big, 0)} MiB on ${c.rss10x!.tree.files.toLocaleString('en')} files / ${f(c.rss10x!.tree.bytes / MiB / 1024, 1)} GiB ` +
            `(${f(c.rss10x!.summaries[0]?.mibPerS, 0)} MiB/s) vs ${f(base, 0)} MiB on mixed`),
    });
  }
  rows.push(ratioRow('rgw', `radosgw bluestore, mixed (${trees.mixed})`, 'wall time, rclone ÷ station, radosgw', 1.1, c.rgw, errors.rgw));
  const shown = rows.filter((r) => {
    const need: Record<string, Workload[]> = {
      large: ['large'],
      mixed: ['mixed'],
      smallfiles: ['smallfiles'],
      md5sum: ['large'],
      rss: [],
      rss10x: ['rss10x'],
      rgw: ['rgw'],
    };
    return need[r.id]!.every(want);
  });

  const machine = machineInfo(rcloneVersion);
  console.log('');
  console.log(`==== targets (issue 6)${opts.quick ? ' — QUICK: not for figures' : ''}`);
  console.log(
    `machine: ${machine.cpuModel ?? '?'}, ${machine.cpus} cores, ${machine.memMiB} MiB; ${new Date().toISOString()}; ` +
      `node ${machine.node}; ${rcloneVersion ?? 'rclone -'}; ${opts.rounds} round(s) per workload`,
  );
  const { ms, withoutExtraCaMs } = machine.nodeStart;
  console.log(
    `node's own start (node -e 0, part of every station run): ${ms} ms` +
      (withoutExtraCaMs === null ? '' : `; ${withoutExtraCaMs} ms without NODE_EXTRA_CA_CERTS, which this environment sets`),
  );
  const fmtValue = (r: TargetRow) => (r.value === null ? '-' : r.unit === 'MiB' ? `${r.value.toFixed(0)} MiB` : `${r.value.toFixed(2)}×`);
  console.log(
    table([
      ['workload', 'measure', 'value', 'target', 'result'],
      ...shown.map((r) => [r.workload, r.measure, fmtValue(r), r.target, r.pass === null ? 'FAIL' : r.pass ? 'PASS' : 'MISS']),
    ], 2),
  );
  for (const r of shown) console.log(`  ${r.id}: ${r.detail}`);

  const ok = Object.keys(errors).length === 0;
  if (ok) fs.rmSync(runsDir, { recursive: true, force: true });
  else if (fs.existsSync(runsDir)) console.log(`station work directories kept in ${path.relative(repoRoot, runsDir)}`);
  return {
    ok,
    results: {
      mode: 'suite',
      quick: opts.quick,
      note: opts.quick ? 'quick: not for figures' : undefined,
      machine,
      rcloneVersion,
      options: opts,
      trees,
      targets: shown.map((r) => ({ ...r, result: r.pass === null ? 'FAIL' : r.pass ? 'PASS' : 'MISS' })),
      workloads: comparisons,
      errors,
    },
  };
}

function machineInfo(rcloneVersion: string | null) {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memMiB: Math.round(os.totalmem() / MiB),
    loadavg: os.loadavg(),
    node: process.version,
    nodeStart: nodeStart(),
    rclone: rcloneVersion,
    kernel: os.release(),
  };
}

let nodeStartMs: { ms: number; withoutExtraCaMs: number | null } | undefined;

/**
 * What every `station load` pays before its first line runs: `node -e 0`'s wall time (median of 7). With
 * NODE_EXTRA_CA_CERTS set, Node 20 builds its whole root certificate store at start (this bench's machine sets it
 * for every process: 55 ms against 17); measured without it too, so the figure shows what is the environment's.
 */
function nodeStart(): { ms: number; withoutExtraCaMs: number | null } {
  const time = (env: NodeJS.ProcessEnv) => {
    const runs = Array.from({ length: 7 }, () => {
      const t0 = performance.now();
      spawnSync(process.execPath, ['-e', '0'], { env, stdio: 'ignore' });
      return performance.now() - t0;
    });
    return Math.round(median(runs));
  };
  const { NODE_EXTRA_CA_CERTS, ...without } = process.env;
  nodeStartMs ??= { ms: time(process.env), withoutExtraCaMs: NODE_EXTRA_CA_CERTS === undefined ? null : time(without) };
  return nodeStartMs;
}

// ------------------------------------------------------------------------------------------------ main

async function single(opts: Options, stamp: string, runId: string): Promise<{ results: object; ok: boolean }> {
  const tree = buildTree(opts.tree!);
  const runsDir = path.join(benchDir, `runs-${stamp}`);
  let target: Target | null = null;
  const stop = () => target?.stop();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      stop();
      process.exit(130);
    });
  }
  let cmp: Comparison;
  try {
    target = opts.target === 'sink' ? await startSink(opts.sinkPort) : await startRgw(console.log);
    cmp = await compare({ label: tree.name, tree, target, rounds: opts.rounds, tools: opts.tools, opts, runsDir, runId, reference: true });
  } finally {
    const warnings = await target?.warnings().catch(() => null);
    if (warnings && Object.keys(warnings).length > 0) console.log(`sink warnings: ${JSON.stringify(warnings)}`);
    stop();
  }
  if (cmp.failure === null) fs.rmSync(runsDir, { recursive: true, force: true });
  else {
    console.error(`\nBENCH FAILED\n${cmp.failure}`);
    if (fs.existsSync(runsDir)) console.log(`station work directories kept in ${path.relative(repoRoot, runsDir)}`);
  }
  return { ok: cmp.failure === null, results: { mode: 'single', options: opts, ...cmp } };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const runId = stamp.slice(11, 19).replace(/-/g, '');
  console.log(`bench: ${opts.rounds} round(s), tools ${opts.tools.join(' + ')}, ${os.cpus().length} CPUs, node ${process.version}`);

  let rcloneVersion: string | null = null;
  if (opts.tools.includes('rclone')) {
    try {
      rcloneVersion = execFileSync('rclone', ['version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
    } catch {
      throw new BenchFailure('rclone is not installed (apt-get install rclone), or use --tools station');
    }
  }

  const { results, ok } = opts.tree !== null ? await single(opts, stamp, runId) : await suite(opts, stamp, runId, rcloneVersion);
  const resultsFile = path.join(benchDir, `results-${stamp}.json`);
  fs.writeFileSync(
    resultsFile,
    JSON.stringify(
      { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), ok, machine: machineInfo(rcloneVersion), ...results },
      null,
      2,
    ) + '\n',
  );
  console.log(`results: ${path.relative(repoRoot, resultsFile)}`);
  if (!ok) console.error('\nBENCH FAILED (see above)');
  return ok ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(err instanceof BenchFailure ? `BENCH FAILED: ${err.message}` : err);
  process.exitCode = 1;
}
