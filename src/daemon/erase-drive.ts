import type { Logger } from 'pino';
import { eraseDevice, eraseTargetOf, NotErased, type EraseTarget } from '../drives/erase.js';
import type { MountedDrive } from '../drives/mount.js';
import { describe } from '../errors.js';
import type { Job, JobStore } from '../jobs/store.js';
import { Progress } from '../load/progress.js';
import { describeDrive, type DriveStage, type DriveState } from './drive-state.js';

/**
 * The daemon's part of `eraseDevice: yes`: once the job has ended and its log is stored, decide whether this
 * drive may be erased, unmount it, erase it with progress on the drive's card, and record the outcome on the job
 * (notes, which `station job status` shows). What is erased, and the checks on the device, are in
 * src/drives/erase.ts.
 */

export interface EraseContext {
  store: JobStore;
  log: Logger;
  move: (s: DriveState, stage: DriveStage, detail?: string) => void;
}

const NOTE = 'eraseDevice:';

/**
 * Why this drive must not be erased; undefined when it may. Only a job that ended Completed: with
 * CompletedWithErrors, Canceled or anything else, some of the customer's files are not in S3 and the drive may be
 * the only copy (it goes back to its owner unerased, which leaks nothing). Only a device the daemon mounted
 * itself: a directory or someone else's mount is not known to be the customer's device, nor unused.
 */
export function whyNotErase(s: DriveState, job: Job, mounted: MountedDrive | undefined): string | undefined {
  if (job.jobStatus !== 'Completed') {
    const errors = job.jobStatus === 'CompletedWithErrors' ? ` (${job.errorCount ?? 'some'} files with errors in the import log)` : '';
    return `the job ended ${job.jobStatus}${errors}: not all of the customer's data is known to be in S3`;
  }
  if (job.logKey === undefined) return 'the import log is not stored';
  if (!mounted) {
    return s.drive.kind === 'mount'
      ? `the station did not mount it (${s.drive.device} was mounted at ${s.drive.path} by someone else)`
      : `it is a directory (${describeDrive(s.drive)}), not a device the station mounted`;
  }
  return undefined;
}

/** Runs after a load whose manifest asks `eraseDevice: yes`; ends the drive 'erased' or 'erase-failed'. */
export async function eraseAfterLoad(ctx: EraseContext, s: DriveState, job: Job, mounted: MountedDrive | undefined): Promise<void> {
  const { store, log } = ctx;
  const ended = `job ${job.id} ${job.jobStatus}`;
  const notErased = (reason: string) => {
    store.addNote(job.id, `${NOTE} the device was not erased: ${reason}`);
    log.warn({ jobId: job.id, drive: describeDrive(s.drive), reason }, 'device not erased');
    ctx.move(s, 'erase-failed', `${ended}; NOT erased: ${reason}; safe to unplug`);
  };
  const why = whyNotErase(s, job, mounted);
  if (why !== undefined || !mounted) return notErased(why ?? 'not mounted');

  let target: EraseTarget;
  try {
    // Checked while still mounted by us: the device cannot have been swapped for another since the load.
    target = await eraseTargetOf(mounted.device, mounted.mountpoint);
    await mounted.unmount();
  } catch (err) {
    return notErased(err instanceof NotErased ? err.reason : `could not prepare the erase: ${describe(err)}`);
  }

  const what = `${target.device} (${size(target.size)})`;
  // Noted before the first write: after a crash or power cut mid-erase, the job says an erase began and no outcome.
  store.addNote(job.id, `${NOTE} erasing ${what}${target.device !== target.mounted ? `, the disk of ${target.mounted}` : ''}`);
  s.progress = new Progress();
  s.progress.setTotals(0, target.size);
  s.lastProgressAt = Date.now();
  const progress = s.progress;
  ctx.move(s, 'erasing', `overwriting ${what} with zeros`);
  try {
    const done = await eraseDevice(target, { signal: s.controller.signal, seed: job.id, onBytes: (n) => progress.addBytes(n) });
    const sample = done.sampled >= done.size ? `all ${size(done.sampled)} read back as zeros` : `${size(done.sampled)} sampled (first, last and random MiB) read back as zeros`;
    store.addNote(job.id, `${NOTE} ${what} overwritten with zeros; ${sample}`);
    log.info({ jobId: job.id, device: target.device, bytes: done.size, sampled: done.sampled }, 'device erased');
    ctx.move(s, 'erased', `${ended}; ${target.device} erased, safe to unplug`);
  } catch (err) {
    const e = err instanceof NotErased ? err : new NotErased(target.device, describe(err), progress.doneBytes, { cause: err });
    if (e.written > 0) {
      const reason = `${e.reason} (after ${size(e.written)} of ${size(target.size)} were overwritten: the device is partly overwritten, NOT erased)`;
      store.addNote(job.id, `${NOTE} the erase of ${what} did not finish: ${reason}`);
      log.warn({ jobId: job.id, device: target.device, written: e.written, reason: e.reason }, 'erase did not finish');
      ctx.move(s, 'erase-failed', `${ended}; NOT erased: ${reason}; safe to unplug`);
    } else {
      notErased(e.reason);
    }
  }
}

function size(n: number): string {
  return n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}
