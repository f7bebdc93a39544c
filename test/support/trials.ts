// Crash trials: loads of a mixed drive, each killed with SIGKILL at a random moment and run again until done,
// against the real S3 server; after each, the audit (test/support/audit.ts) counts lost, corrupt and stray
// objects, duplicated, missing and wrong log rows, and open multipart uploads — all of which must be 0.
// Run by `npm run trials -- N` (scripts/trials.ts) and, three trials long, by test/trials.test.ts.
import { spawn } from 'node:child_process';
import { auditLoad, faults, mixedDrive, type Audit } from './audit.js';
import { seededRandom } from '../../src/random.js';
import { setupLoad, stationEnv, writeDrive, type LoadSetup } from './load.js';
import { ROOT, STATION } from './station.js';

export interface TrialOptions {
  trials: number;
  seed: number;
  /** the drive's make-up (default: 3 multipart files, 40 of 64 KiB–1 MiB, 300 of 0–16 KiB) */
  drive?: { multipart: number; medium: number; small: number };
  say: (line: string) => void;
}

export interface TrialTotals {
  trials: number;
  kills: number;
  runs: number;
  files: number;
  bytes: number;
  counts: ReturnType<typeof faults>;
  /** runs that ended with an exit code other than 0, or did not end */
  failedRuns: number;
  problems: string[];
}

/** A run of `station load`, killed with SIGKILL after `killAfterMs` unless it ended first. */
function runLoad(setup: LoadSetup, killAfterMs?: number): Promise<{ code: number | null; killed: boolean; ms: number; stderr: string }> {
  const env = stationEnv(setup, { STATION_LOG_LEVEL: 'warn' });
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STATION, 'load', setup.drive], { env, cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    const timers = [
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            killed = child.kill('SIGKILL');
          }, killAfterMs),
      // a run that hangs is a failure of its own, not a reason for the trials to hang
      setTimeout(() => child.kill('SIGKILL'), 300_000),
    ];
    child.on('error', reject);
    child.on('exit', (code) => {
      for (const t of timers) clearTimeout(t);
      resolve({ code, killed, ms: performance.now() - started, stderr });
    });
  });
}

export async function runTrials(opts: TrialOptions): Promise<TrialTotals> {
  const random = seededRandom(opts.seed);
  const files = mixedDrive(opts.seed % 1000, opts.drive);
  const zero = { lost: 0, corrupt: 0, strayObjects: 0, duplicatedRows: 0, missingRows: 0, wrongRows: 0, openUploads: 0 };
  const totals: TrialTotals = { trials: 0, kills: 0, runs: 0, files: 0, bytes: 0, counts: { ...zero }, failedRuns: 0, problems: [] };

  const cleanups: Array<() => void | Promise<void>> = [];
  const station = async (): Promise<LoadSetup> => {
    // few requests at a time, so a load lasts long enough for kills to land in every stage of it
    const setup = await setupLoad({ after: (fn) => cleanups.push(fn) }, { upload: '  maxRequests: 4\n' });
    writeDrive(setup.drive, files);
    return setup;
  };
  const clean = async () => {
    for (const fn of cleanups.splice(0)) await fn();
  };

  try {
    // One load without a kill: how long a load lasts, so kill moments can be drawn over all of it.
    const calibration = await station();
    const clean0 = await runLoad(calibration);
    if (clean0.code !== 0) throw new Error(`the load without a kill failed (exit ${clean0.code}): ${clean0.stderr}`);
    // The first load of a process pays for cold caches: a run that goes whole from the start updates the span.
    let span = clean0.ms;
    opts.say(`seed ${opts.seed}; a load without a kill took ${Math.round(span)} ms; kills are drawn over the length of the last whole load`);
    await clean();

    for (let trial = 1; trial <= opts.trials; trial++) {
      // A load that ends before its kill is no trial: the span shrinks to it, and a fresh load is killed instead.
      let setup: LoadSetup | undefined;
      let story: string[] = [];
      for (let attempt = 1; attempt <= 5 && setup === undefined; attempt++) {
        const candidate = await station();
        // one kill, or (a third of the time) a second one during the first restart
        const kills = [random() * span, ...(random() < 1 / 3 ? [random() * span * 0.5] : [])];
        const first = await runLoad(candidate, kills[0]);
        totals.runs++;
        if (!first.killed && first.code === 0) {
          opts.say(`  (a load ended in ${Math.round(first.ms)} ms, before its kill at ${Math.round(kills[0]!)} ms: drawing again)`);
          span = Math.min(span, first.ms);
          await clean();
          continue;
        }
        setup = candidate;
        story = await resumeUntilDone(candidate, first, kills, totals, trial);
      }
      if (setup === undefined) throw new Error(`trial ${trial}: five loads in a row ended before their kill`);
      const audit: Audit = await auditLoad(setup);
      totals.trials++;
      totals.files += audit.files;
      totals.bytes += audit.bytes;
      const counts = faults(audit);
      for (const k of Object.keys(counts) as Array<keyof typeof counts>) totals.counts[k] += counts[k];
      totals.problems.push(...audit.problems.map((p) => `trial ${trial}: ${p}`));
      const bad = Object.entries(counts).filter(([, v]) => v > 0);
      opts.say(`trial ${trial}/${opts.trials}: ${story.join(', ')}; ${bad.length === 0 ? 'all objects and rows right' : `PROBLEMS ${JSON.stringify(Object.fromEntries(bad))}`}`);
      await clean();
    }
  } finally {
    await clean();
  }
  return totals;
}

/** After the first run (killed, or failed), runs the load again, killing the later runs that have a kill drawn, until it ends. */
async function resumeUntilDone(
  setup: LoadSetup,
  first: Awaited<ReturnType<typeof runLoad>>,
  kills: number[],
  totals: TrialTotals,
  trial: number,
): Promise<string[]> {
  const story: string[] = [];
  let r = first;
  for (let run = 1; ; run++) {
    const killAt = kills[run - 1];
    if (run > 1) {
      r = await runLoad(setup, killAt);
      totals.runs++;
    }
    if (r.killed) {
      totals.kills++;
      // A kill can land after the job ended, while the process was closing: the job is done, and a next run would
      // rightly be refused (JobNotLoadable) rather than load it again.
      const { jobStatus } = JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout) as { jobStatus: string };
      if (jobStatus === 'Completed' || jobStatus === 'CompletedWithErrors') {
        story.push(`killed at ${Math.round(killAt!)} ms, after the job had ended (${jobStatus})`);
        return story;
      }
      story.push(`killed at ${Math.round(killAt!)} ms`);
    } else if (r.code === 0) {
      story.push(`done in ${Math.round(r.ms)} ms`);
      return story;
    } else {
      totals.failedRuns++;
      story.push(`exit ${r.code}`);
      totals.problems.push(`trial ${trial}, run ${run}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    if (run >= kills.length + 3) {
      totals.problems.push(`trial ${trial}: not done after ${run} runs`);
      return story;
    }
  }
}

/** The summary lines a person reads. */
export function summary(t: TrialTotals): string[] {
  const c = t.counts;
  return [
    `trials ${t.trials}, runs ${t.runs}, kills ${t.kills}, files ${t.files}, bytes ${t.bytes} (${(t.bytes / 2 ** 20).toFixed(1)} MiB)`,
    `lost ${c.lost}, corrupt ${c.corrupt}, stray or duplicated objects ${c.strayObjects}, duplicated rows ${c.duplicatedRows}, ` +
      `missing rows ${c.missingRows}, wrong rows ${c.wrongRows}, open uploads ${c.openUploads}, failed runs ${t.failedRuns}`,
  ];
}

export function allZero(t: TrialTotals): boolean {
  return t.failedRuns === 0 && Object.values(t.counts).every((v) => v === 0);
}
