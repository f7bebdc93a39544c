import { Exit } from '../../errors.js';
import { makeLogger } from '../../log.js';
import type { LoadOutcome } from '../../load/loader.js';
import { Progress } from '../../load/progress.js';
import type { Command } from '../command.js';

export const loadCommand: Command = {
  name: 'load',
  summary: "load one mounted drive: check its SIGNATURE, upload every file, write the job's import log",
  usage: 'MOUNTPOINT [--job JOBID] [--verify]',
  positionals: ['MOUNTPOINT'],
  options: { job: { type: 'string' }, verify: { type: 'boolean' } },
  details:
    '--job JOBID   the job ID on the shipping label: ties a drive whose SIGNATURE is missing or unreadable to its\n' +
    '              job (which is then marked MissingSignature); a SIGNATURE naming another job is refused.\n' +
    '--verify      after the load, re-read every stored file and compare MD5s.\n' +
    'Exit codes: 0 Completed, 3 CompletedWithErrors, 4 refused or aborted (the job stays InProgress when the load\n' +
    'was interrupted: run the same command again to resume), 2 usage or config errors.',
  async run(ctx) {
    const config = ctx.config();
    const [{ loadDevice }, { closeStation, openStation }] = await Promise.all([import('../../load/loader.js'), import('../../load/station.js')]);
    // On a terminal the live progress line tells what info lines would; warnings and errors still show.
    const level = process.stderr.isTTY && config.log.level === 'info' ? 'warn' : config.log.level;
    const log = makeLogger(level);
    const station = openStation(ctx.store(), config, log);
    const progress = new Progress();
    const stopDisplay = showProgress(progress, log);
    const shutdown = new AbortController();
    const onSignal = () => shutdown.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    let outcome: LoadOutcome;
    try {
      outcome = await loadDevice(station, {
        root: ctx.args.MOUNTPOINT!,
        verify: ctx.flag('verify'),
        progress,
        signal: shutdown.signal,
        ...(ctx.string('job') !== undefined && { jobHint: ctx.string('job')! }),
      });
    } finally {
      stopDisplay();
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await closeStation(station);
    }
    const { job, end } = outcome;
    ctx.print(
      {
        jobId: job.id,
        jobStatus: job.jobStatus,
        deviceStatus: job.deviceStatus,
        end: end.kind,
        ...(end.kind === 'interrupted' && { reason: end.reason }),
        errorCount: outcome.errorCount,
        ...(job.logKey !== undefined && { logBucket: job.logBucket, logKey: job.logKey }),
        ...(outcome.logFile !== undefined && { logFile: outcome.logFile }),
        progress: { ...progress.snapshot(), byCode: Object.fromEntries(progress.byCode) },
      },
      () => [
        `job ${job.id}: ${job.jobStatus}${end.kind === 'interrupted' ? ` (interrupted: ${end.reason}; run again to resume)` : ''}`,
        ...progress.summary(),
        ...(job.logKey !== undefined ? [`import log: s3://${job.logBucket}/${job.logKey} (copy in ${outcome.logFile})`] : []),
      ],
    );
    if (end.kind === 'finished') return job.jobStatus === 'Completed' ? Exit.ok : Exit.completedWithErrors;
    return Exit.aborted;
  },
};

/** On a terminal, a live line; otherwise a log line every few seconds. Returns the function that stops it. */
function showProgress(progress: Progress, log: ReturnType<typeof makeLogger>): () => void {
  if (process.stderr.isTTY) {
    const timer = setInterval(() => process.stderr.write(`\r\x1b[K${progress.line()}`), 250);
    return () => {
      clearInterval(timer);
      process.stderr.write(`\r\x1b[K`);
    };
  }
  const timer = setInterval(() => log.info({ progress: progress.snapshot() }, 'loading'), 5000);
  return () => clearInterval(timer);
}
