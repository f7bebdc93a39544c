import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * How the benchmark runs the station: `station load` on the tree, set up outside the timing.
 *
 * Contract (bench/run.ts relies on nothing else):
 *  - `stationCommand(tree, endpoint, ctx)` is called once per round, before the run, and returns the command to run,
 *    or `null` when the station cannot be run (then the station side is skipped with a printed message).
 *  - The command is spawned without a shell as `/usr/bin/time -f … cmd ...args`, cwd `cwd ?? ctx.repoRoot`, with the
 *    environment `{ ...process.env, ...env }` (so return only what you add or override; set a key to '' to blank it).
 *    Stdout and stderr are captured (shown with --verbose, and their tail on failure).
 *  - It must upload every file of `tree` (an absolute path; regular files only, no symlinks, no empty files) to the
 *    bucket `ctx.bucket` at `endpoint` (http://127.0.0.1:PORT, path style, no TLS), then exit 0. On the sink any
 *    credentials do and the bucket need not exist; on radosgw (`ctx.credentials` set) the bucket and
 *    `<bucket>-logs` exist before the run and the credentials are in the AWS_* variables. Keys may carry
 *    any prefix: the check counts objects and bytes in the bucket, which must equal the tree's file count and size.
 *  - `ctx.workDir` is a fresh empty directory for this run only (put the station's state, journal, database and
 *    import log there: a state shared between rounds would let round 2 skip files "already loaded").
 *  - Wall time is measured around the whole process (start-up included); peak memory is the max RSS of the
 *    process tree as reported by GNU time (%M: the largest single process, not the sum).
 */

export interface StationContext {
  /** Bucket to load into; new for each run. */
  bucket: string;
  /** 1-based round number. */
  round: number;
  /** Fresh, empty, absolute directory for this run's state (database, journal, logs, config). */
  workDir: string;
  /** Absolute path of the repository (the default cwd). */
  repoRoot: string;
  /** Number of files and bytes the sink must have received at the end. */
  files: number;
  bytes: number;
  /**
   * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION for a real S3 server (radosgw); default SINK_CREDENTIALS.
   * With a real server the bucket and `<bucket>-logs` exist before the run (bench/run.ts creates them).
   */
  credentials?: Record<string, string>;
}

export interface StationCommand {
  cmd: string;
  args: string[];
  /** Added to / overriding process.env. */
  env: Record<string, string>;
  /** Removed from the environment after env is applied. */
  unsetEnv?: string[];
  cwd?: string;
}

/** Credentials and region any S3 client may use against the sink (it checks no signature). */
export const SINK_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_REGION: 'us-east-1',
} as const;

export function stationCommand(tree: string, endpoint: string, ctx: StationContext): StationCommand | null {
  const env: Record<string, string> = {
    ...SINK_CREDENTIALS,
    ...ctx.credentials,
    TREE: tree,
    SINK_ENDPOINT: endpoint,
    BENCH_BUCKET: ctx.bucket,
    BENCH_WORKDIR: ctx.workDir,
    BENCH_ROUND: String(ctx.round),
  };

  // Another command in the station's place (a prototype, an older build), e.g.
  //   BENCH_STATION_CMD='node /path/to/other/dist/station/main.js load "$TREE"' npm run bench
  // It sees TREE, SINK_ENDPOINT, BENCH_BUCKET, BENCH_WORKDIR, BENCH_ROUND and the AWS_* above.
  const shell = process.env.BENCH_STATION_CMD;
  if (shell !== undefined && shell.trim() !== '') {
    return { cmd: 'bash', args: ['-c', shell], env };
  }

  return prepareStation(tree, endpoint, ctx, env);
}

const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/**
 * Everything a station needs before the timed `station load`, done outside the timing: a config pointing at the
 * sink, an account, a job for ctx.bucket (log to another bucket, so the sink's count is the tree's), and a drive
 * that is the tree plus its SIGNATURE. The drive is a folder of hard links to the tree's files, so the tree itself
 * (which rclone uploads too) never holds a SIGNATURE.
 */
function prepareStation(tree: string, endpoint: string, ctx: StationContext, env: Record<string, string>): StationCommand {
  const main = path.join(ctx.repoRoot, 'dist', 'station', 'main.js');
  const config = path.join(ctx.workDir, 'config.yaml');
  // BENCH_STATION_CONFIG: more of the station's config (YAML, e.g. "upload:\n  memory: 192 MiB"), to bench a setting.
  const extra = process.env.BENCH_STATION_CONFIG ?? '';
  fs.writeFileSync(config, `dataDir: ${path.join(ctx.workDir, 'data')}\ns3:\n  endpoint: ${endpoint}\n${extra}${extra.endsWith('\n') || !extra ? '' : '\n'}`);
  const stationEnv = { ...env, STATION_CONFIG: config, STATION_LOG_LEVEL: 'warn' };
  const station = (args: string[], input = '') => {
    const r = spawnSync(process.execPath, [main, ...args], { env: { ...process.env, ...stationEnv }, input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`station ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  station(['account', 'add', ACCESS_KEY_ID], SECRET_KEY);
  const manifest = path.join(ctx.workDir, 'manifest.yaml');
  fs.writeFileSync(
    manifest,
    [
      'manifestVersion: 2.0',
      `accessKeyId: ${ACCESS_KEY_ID}`,
      `bucket: ${ctx.bucket}`,
      `logBucket: ${ctx.bucket}-logs`,
      'deviceId: BENCH',
      'returnAddress:',
      '  name: Bench',
      '  street1: 1 Loop Road',
      '  city: Localhost',
      '  stateOrProvince: LO',
      '  postalCode: 127001',
      '  phoneNumber: 555-0100',
      '  country: Nowhere',
      '',
    ].join('\n'),
  );
  const drive = path.join(ctx.workDir, 'drive');
  linkTree(tree, drive);
  station(['job', 'create', manifest, '--no-bucket-check', '--signature-out', path.join(drive, 'SIGNATURE')]);
  // BENCH_STATION_NODE_ARGS: node options for the timed run, e.g. `--cpu-prof --cpu-prof-dir=DIR` (bench/run.ts --cpu-prof)
  const nodeArgs = (process.env.BENCH_STATION_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  // BENCH_STATION_MAIN: another build's station/main.js for the timed run (set-up above uses this repo's build)
  const timedMain = process.env.BENCH_STATION_MAIN || main;
  return { cmd: process.execPath, args: [...nodeArgs, timedMain, 'load', drive], env: stationEnv };
}

function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) linkTree(src, dst);
    else if (e.isFile()) fs.linkSync(src, dst);
  }
}
