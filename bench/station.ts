/**
 * How the benchmark runs the station. This is the one place to change when `station load` is ready.
 *
 * Contract (bench/run.ts relies on nothing else):
 *  - `stationCommand(tree, endpoint, ctx)` is called once per round, before the run, and returns the command to run,
 *    or `null` when the station cannot be run (then the station side is skipped with a printed message).
 *  - The command is spawned without a shell as `/usr/bin/time -f … cmd ...args`, cwd `cwd ?? ctx.repoRoot`, with the
 *    environment `{ ...process.env, ...env }` (so return only what you add or override; set a key to '' to blank it).
 *    Stdout and stderr are captured (shown with --verbose, and their tail on failure).
 *  - It must upload every file of `tree` (an absolute path; regular files only, no symlinks, no empty files) to the
 *    bucket `ctx.bucket` at `endpoint` (http://127.0.0.1:PORT, path style, any credentials, no TLS), then exit 0.
 *    The bucket is new for every run and need not be created (the sink accepts any bucket name). Keys may carry
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
    TREE: tree,
    SINK_ENDPOINT: endpoint,
    BENCH_BUCKET: ctx.bucket,
    BENCH_WORKDIR: ctx.workDir,
    BENCH_ROUND: String(ctx.round),
  };

  // Stand-in until `station load` exists: any shell command, e.g.
  //   BENCH_STATION_CMD='node dist/cli/main.js load "$TREE"' npm run bench
  // It sees TREE, SINK_ENDPOINT, BENCH_BUCKET, BENCH_WORKDIR, BENCH_ROUND and the AWS_* above.
  const shell = process.env.BENCH_STATION_CMD;
  if (shell !== undefined && shell.trim() !== '') {
    return { cmd: 'bash', args: ['-c', shell], env };
  }

  // TODO(station): when `station load` exists, return it here, for instance:
  //   return {
  //     cmd: process.execPath,
  //     args: ['dist/cli/main.js', 'load', tree],
  //     env: { ...env, STATION_S3_ENDPOINT: endpoint, STATION_S3_BUCKET: ctx.bucket, STATION_STATE_DIR: ctx.workDir },
  //   };
  return null;
}
