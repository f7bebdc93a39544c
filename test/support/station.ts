import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const STATION = join(ROOT, 'dist', 'station', 'main.js');
export const FIXTURES = join(ROOT, 'fixtures');
export const manifestFixture = (name: string) => join(FIXTURES, 'manifests', name);

/** The example account of the fixture manifests. */
export const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
export const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A temp folder for one test, removed afterwards; `dataDir` inside it is the station's. */
export function tempStation(t: { after: (fn: () => void) => void }): { dir: string; dataDir: string; configFile: string; run: Runner; runAsync: AsyncRunner } {
  const dir = mkdtempSync(join(tmpdir(), 'station-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  // An empty config file: every setting at its default.
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, '');
  const env = { STATION_DATA_DIR: dataDir, STATION_CONFIG: configFile };
  return {
    dir,
    dataDir,
    configFile,
    run: (args, opts = {}) => station(args, { ...opts, env: { ...env, ...opts.env } }),
    runAsync: (args, opts = {}) => stationAsync(args, { ...opts, env: { ...env, ...opts.env } }),
  };
}

export type Runner = (args: string[], opts?: RunOptions) => Result;
export type AsyncRunner = (args: string[], opts?: RunOptions) => Promise<Result>;

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** The environment of a station run: the test's own, minus anything that would point it at a real AWS account. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('STATION_')) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function station(args: string[], opts: RunOptions = {}): Result {
  const r = spawnSync(process.execPath, [STATION, ...args], {
    input: opts.input ?? '',
    env: cleanEnv(opts.env),
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function stationAsync(args: string[], opts: RunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STATION, ...args], { env: cleanEnv(opts.env), cwd: opts.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** The error name a refused command printed first on stderr. */
export function errorName(r: Result): string {
  return r.stderr.split(/[\s:]/)[0] ?? '';
}
