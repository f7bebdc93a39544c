/**
 * Benchmark driver: the station's `load` against rclone 1.60 (defaults), same tree, same loopback discard sink,
 * tools alternated round by round, medians reported, results written to .bench/results-<timestamp>.json.
 *
 *   node --import tsx bench/run.ts [--rounds N] [--tree NAME|SPEC] [--tools rclone,station] [--verbose]
 *                                  [--no-probe] [--no-warmup] [--rclone-args "ARGS"] [--sink-port P]
 *   env: BENCH_ROUNDS, BENCH_TREE, BENCH_TOOLS, BENCH_RCLONE_ARGS, BENCH_STATION_CMD (see bench/station.ts)
 *
 * Every run is checked: exit status 0, and the sink holds exactly the tree's file count and bytes in that run's
 * bucket. Anything else stops the benchmark with exit status 1.
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buildTree, type Tree } from './tree.ts';
import { stationCommand, SINK_CREDENTIALS, type StationCommand } from './station.ts';

const MiB = 1024 * 1024;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repoRoot);
const benchDir = path.join(repoRoot, '.bench');
fs.mkdirSync(benchDir, { recursive: true });

// ------------------------------------------------------------------------------------------------ options

interface Options {
  rounds: number;
  tree: string;
  tools: ('rclone' | 'station')[];
  verbose: boolean;
  probe: boolean;
  warmup: boolean;
  rcloneArgs: string[];
  sinkPort: number;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    tree: process.env.BENCH_TREE ?? 'mixed',
    tools: (process.env.BENCH_TOOLS ?? 'rclone,station').split(',') as Options['tools'],
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
        o.rounds = Number(value());
        break;
      case '--tree':
        o.tree = value();
        break;
      case '--tools':
        o.tools = value().split(',') as Options['tools'];
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
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error(`--rounds must be a positive integer`);
  for (const t of o.tools) if (t !== 'rclone' && t !== 'station') throw new Error(`unknown tool ${t}`);
  return o;
}

// ------------------------------------------------------------------------------------------------ sink

interface Sink {
  endpoint: string;
  stop(): void;
  globalStats(): Promise<GlobalStats>;
  bucketStats(bucket: string): Promise<BucketStats>;
  dropBucket(bucket: string): Promise<void>;
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

async function startSinkProcess(port: number): Promise<Sink> {
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
    endpoint,
    stop() {
      stopping = true;
      child.kill('SIGTERM');
    },
    globalStats: () => getJson<GlobalStats>('/__stats'),
    bucketStats: (b) => getJson<BucketStats>(`/__stats?bucket=${encodeURIComponent(b)}`),
    async dropBucket(b) {
      await fetch(`${endpoint}/__bucket?bucket=${encodeURIComponent(b)}`, { method: 'DELETE' });
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

// ------------------------------------------------------------------------------------------------ running a tool

interface RunResult {
  tool: 'rclone' | 'station';
  round: number;
  bucket: string;
  wallS: number;
  timeWallS: number | null;
  maxRssKiB: number | null;
  userS: number | null;
  sysS: number | null;
  sinkCpuS: number;
  mibPerS: number;
  filesPerS: number;
  objects: number;
  bytes: number;
  sinkCounters: Record<string, number>;
  sinkErrorsDuringRun: Record<string, number>;
}

class BenchFailure extends Error {}

function tail(s: string, lines: number): string {
  return s.split('\n').slice(-lines).join('\n');
}

async function runTool(
  tool: 'rclone' | 'station',
  round: number,
  command: StationCommand,
  bucket: string,
  tree: Tree,
  sink: Sink,
  verbose: boolean,
): Promise<RunResult> {
  const timeFile = path.join(benchDir, `time-${process.pid}.txt`);
  fs.rmSync(timeFile, { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  for (const [k, v] of Object.entries(command.env)) env[k] = v;
  for (const k of command.unsetEnv ?? []) delete env[k];
  const before = await sink.globalStats();
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
  const after = await sink.globalStats();
  const stats = await sink.bucketStats(bucket);

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
  if (status.code !== 0) problems.push(`exit status ${status.code ?? 'none'}${status.signal ? ` (signal ${status.signal})` : ''}`);
  if (stats.objects !== tree.files) problems.push(`sink holds ${stats.objects} objects, the tree has ${tree.files} files`);
  if (stats.bytes !== tree.bytes) problems.push(`sink holds ${stats.bytes} bytes, the tree has ${tree.bytes}`);
  if (problems.length > 0) {
    throw new BenchFailure(
      `${tool} round ${round} FAILED: ${problems.join('; ')}\n` +
        `  command: ${command.cmd} ${command.args.map((a) => JSON.stringify(a)).join(' ')}\n` +
        `  sink errors during the run: ${JSON.stringify(errorsDuring)}; bucket counters: ${JSON.stringify(stats.counters)}\n` +
        `  last output:\n${tail(out, 30).replace(/^/gm, '    | ')}`,
    );
  }
  await sink.dropBucket(bucket);
  return {
    tool,
    round,
    bucket,
    wallS,
    timeWallS: m ? Number(m[1]) : null,
    maxRssKiB: m ? Number(m[2]) : null,
    userS: m ? Number(m[3]) : null,
    sysS: m ? Number(m[4]) : null,
    sinkCpuS: (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / 1e6,
    mibPerS: tree.bytes / MiB / wallS,
    filesPerS: tree.files / wallS,
    objects: stats.objects,
    bytes: stats.bytes,
    sinkCounters: stats.counters,
    sinkErrorsDuringRun: errorsDuring,
  };
}

function rcloneCommand(tree: Tree, endpoint: string, bucket: string, extra: string[]): StationCommand {
  const emptyConf = path.join(benchDir, 'rclone-empty.conf');
  if (!fs.existsSync(emptyConf)) fs.writeFileSync(emptyConf, '');
  return {
    cmd: 'rclone',
    args: ['copy', tree.dir, `sink:${bucket}`, ...extra],
    env: {
      RCLONE_CONFIG: emptyConf,
      RCLONE_CONFIG_SINK_TYPE: 's3',
      RCLONE_CONFIG_SINK_PROVIDER: 'Other',
      RCLONE_CONFIG_SINK_ENV_AUTH: 'false',
      RCLONE_CONFIG_SINK_ENDPOINT: endpoint,
      RCLONE_CONFIG_SINK_ACCESS_KEY_ID: SINK_CREDENTIALS.AWS_ACCESS_KEY_ID,
      RCLONE_CONFIG_SINK_SECRET_ACCESS_KEY: SINK_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
      RCLONE_CONFIG_SINK_REGION: SINK_CREDENTIALS.AWS_REGION,
      RCLONE_CONFIG_SINK_FORCE_PATH_STYLE: 'true',
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
  medianSinkCpuS: number;
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
    medianSinkCpuS: median(runs.map((r) => r.sinkCpuS)),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

const f = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));

function runLine(r: RunResult): string {
  return (
    `  round ${r.round} ${r.tool.padEnd(7)} ${f(r.wallS, 2).padStart(7)} s  ${f(r.mibPerS).padStart(7)} MiB/s  ` +
    `${f(r.filesPerS, r.filesPerS < 100 ? 2 : 0).padStart(6)} files/s  RSS ${f(r.maxRssKiB === null ? null : r.maxRssKiB / 1024).padStart(6)} MiB  ` +
    `CPU ${f(r.userS === null || r.sysS === null ? null : r.userS + r.sysS, 2)} s  sink CPU ${f(r.sinkCpuS, 2)} s  ` +
    `[${r.objects} objects, ${r.bytes} bytes: ok]`
  );
}

function describeCounters(c: Record<string, number>): string {
  const bodies = (c.bodiesWithContentMd5 ?? 0) + (c.bodiesWithoutContentMd5 ?? 0);
  return (
    `${c.putObject} PutObject, ${c.uploadPart} UploadPart (${c.completeMultipart} multipart), ${c.headObject} HeadObject, ` +
    `${c.list} List; Content-MD5 on ${c.bodiesWithContentMd5}/${bodies} bodies; ` +
    `payload ${c.unsignedPayload} unsigned / ${c.signedPayload} signed`
  );
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  console.log(`bench: ${opts.rounds} round(s), tools ${opts.tools.join(' + ')}, ${os.cpus().length} CPUs, node ${process.version}`);

  let rcloneVersion: string | null = null;
  if (opts.tools.includes('rclone')) {
    try {
      rcloneVersion = execFileSync('rclone', ['version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
    } catch {
      throw new BenchFailure('rclone is not installed (apt-get install rclone), or use --tools station');
    }
  }

  const tree = buildTree(opts.tree);
  if (opts.warmup) console.log(`warm-up: read the tree in ${warmTree(tree).toFixed(2)} s (page cache)`);

  const sink = await startSinkProcess(opts.sinkPort);
  console.log(`sink: ${sink.endpoint}`);
  const cleanup = () => sink.stop();
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  const runs: RunResult[] = [];
  const probes: number[] = [];
  const skipped: string[] = [];
  let failure: string | null = null;
  const runId = stamp.slice(11, 19).replace(/-/g, '');
  const runsDir = path.join(benchDir, `runs-${stamp}`);
  const countersShown = new Set<string>();

  try {
    for (let round = 1; round <= opts.rounds; round++) {
      if (opts.probe) {
        const p = await cpuProbe();
        probes.push(p);
        console.log(`round ${round}: CPU probe, MD5 on 2 threads: ${p.toFixed(0)} MiB/s (~800 MiB/s per free core)`);
      } else {
        console.log(`round ${round}:`);
      }
      const order = round % 2 === 1 ? opts.tools : [...opts.tools].reverse();
      for (const tool of order) {
        const bucket = `bench-${tool}-${runId}-r${round}`.toLowerCase();
        let command: StationCommand | null;
        if (tool === 'rclone') {
          command = rcloneCommand(tree, sink.endpoint, bucket, opts.rcloneArgs);
        } else {
          const workDir = path.join(runsDir, `station-r${round}`);
          fs.rmSync(workDir, { recursive: true, force: true });
          fs.mkdirSync(workDir, { recursive: true });
          command = stationCommand(tree.dir, sink.endpoint, {
            bucket,
            round,
            workDir,
            repoRoot,
            files: tree.files,
            bytes: tree.bytes,
          });
          if (command === null) {
            if (skipped.length === 0) {
              console.log(
                '  station: station load not available yet: skipped (fill in bench/station.ts, or set BENCH_STATION_CMD)',
              );
            }
            skipped.push(`round ${round}`);
            continue;
          }
        }
        await new Promise((r) => setTimeout(r, 300)); // let the sink settle (GC) between runs
        const r = await runTool(tool, round, command, bucket, tree, sink, opts.verbose);
        runs.push(r);
        console.log(runLine(r));
        if (!countersShown.has(tool)) {
          countersShown.add(tool);
          console.log(`    sink saw: ${describeCounters(r.sinkCounters)}`);
          if (Object.keys(r.sinkErrorsDuringRun).length > 0) {
            console.log(`    sink error answers during the run: ${JSON.stringify(r.sinkErrorsDuringRun)}`);
          }
        }
      }
    }
  } catch (err) {
    if (!(err instanceof BenchFailure)) throw err;
    failure = err.message;
  }
  const sinkFinal = await sink.globalStats().catch(() => null);
  cleanup();

  const summaries = opts.tools
    .map((t) => ({ t, rs: runs.filter((r) => r.tool === t) }))
    .filter((x) => x.rs.length > 0)
    .map((x) => summarize(x.t, x.rs, tree));

  console.log('');
  console.log(
    `tree "${tree.name}": ${tree.files.toLocaleString('en')} files, ${(tree.bytes / MiB).toFixed(1)} MiB; ` +
      `medians of ${opts.rounds} round(s), tools alternated`,
  );
  if (summaries.length > 0) {
    const rows = [
      ['tool', 'runs', 'wall s', 'min–max s', 'MiB/s', 'files/s', 'peak RSS MiB', 'CPU s', 'sink CPU s'],
      ...summaries.map((s) => [
        s.tool,
        String(s.runs),
        f(s.medianWallS, 2),
        `${f(s.minWallS, 2)}–${f(s.maxWallS, 2)}`,
        f(s.mibPerS),
        f(s.filesPerS, s.filesPerS < 100 ? 2 : 0),
        f(s.medianMaxRssMiB),
        f(s.medianCpuS, 2),
        f(s.medianSinkCpuS, 2),
      ]),
    ];
    console.log(table(rows));
  }

  let ratio: number | null = null;
  let ratioPerRound: number | null = null;
  const st = summaries.find((s) => s.tool === 'station');
  const rc = summaries.find((s) => s.tool === 'rclone');
  if (st && rc) {
    ratio = st.mibPerS / rc.mibPerS;
    const perRound: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const a = runs.find((r) => r.tool === 'station' && r.round === round);
      const b = runs.find((r) => r.tool === 'rclone' && r.round === round);
      if (a && b) perRound.push(b.wallS / a.wallS);
    }
    ratioPerRound = perRound.length ? median(perRound) : null;
    console.log(
      `\nstation/rclone MiB/s: ${ratio.toFixed(2)}× (of medians); median of per-round ratios: ${f(ratioPerRound, 2)}× ` +
        `[${perRound.map((x) => x.toFixed(2)).join(', ')}]`,
    );
  } else if (skipped.length > 0) {
    console.log('\nstation/rclone: no ratio: station load not available yet (skipped)');
  }
  if (sinkFinal !== null && Object.keys(sinkFinal.warnings).length > 0) {
    console.log(`sink warnings: ${JSON.stringify(sinkFinal.warnings)}`);
  }

  const resultsFile = path.join(benchDir, `results-${stamp}.json`);
  const results = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    ok: failure === null,
    failure,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memMiB: Math.round(os.totalmem() / MiB),
      loadavg: os.loadavg(),
      node: process.version,
      kernel: os.release(),
    },
    rcloneVersion,
    options: opts,
    tree: { name: tree.name, dir: tree.dir, files: tree.files, bytes: tree.bytes },
    cpuProbeMiBps: probes,
    stationSkipped: skipped,
    runs,
    summaries,
    ratioStationOverRclone: ratio,
    ratioMedianPerRound: ratioPerRound,
    sink: sinkFinal,
  };
  fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  console.log(`results: ${path.relative(repoRoot, resultsFile)}`);
  if (failure === null) fs.rmSync(runsDir, { recursive: true, force: true });
  else if (fs.existsSync(runsDir)) console.log(`station work directories kept in ${path.relative(repoRoot, runsDir)}`);

  if (failure !== null) {
    console.error(`\nBENCH FAILED\n${failure}`);
    return 1;
  }
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(err instanceof BenchFailure ? `BENCH FAILED: ${err.message}` : err);
  process.exitCode = 1;
}
