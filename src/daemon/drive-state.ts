import type { Progress } from '../load/progress.js';
import type { Drive } from '../drives/watch.js';

/** What the daemon is doing with one drive, as `station status` shows it. */
export type DriveStage =
  | 'waiting' // just seen; settling (a copy still arriving, an automounter still mounting)
  | 'mounting'
  | 'verifying' // reading and checking its SIGNATURE
  | 'loading'
  | 'done' // safe to unplug
  | 'refused' // not loaded, and why
  | 'removed' // pulled mid-load: plug it back to resume
  | 'interrupted' // stopped mid-load for another reason; loads again when seen again
  | 'set-aside' // not for the station (mounted by someone else, autoMount off)
  | 'erasing' // the job completed and asked for it (eraseDevice): overwriting the device with zeros
  | 'erased' // overwritten and read back as zeros: safe to unplug
  | 'erase-failed'; // eraseDevice asked, but the device was not (or not wholly) erased, and why: safe to unplug

export interface DriveState {
  drive: Drive;
  stage: DriveStage;
  detail?: string;
  jobId?: string;
  root?: string;
  since: number;
  progress?: Progress;
  controller: AbortController;
  /** the last time the load moved forward, for the watchdog */
  lastProgressAt: number;
  lastDoneBytes: number;
  /** the work on this drive; a drive plugged back waits for the work on its earlier attach to settle */
  task?: Promise<void>;
}

/** Stages in which the station is working on the drive: pulling it then loses that work (not safe to unplug). */
const WORKING: ReadonlySet<DriveStage> = new Set(['waiting', 'mounting', 'verifying', 'loading', 'erasing']);
/** Stages whose progress (files and bytes loaded, or bytes erased) moves, for the status and the watchdog. */
const MOVING: ReadonlySet<DriveStage> = new Set(['loading', 'erasing']);

export const safeToUnplug = (stage: DriveStage): boolean => !WORKING.has(stage);
export const progressMoves = (stage: DriveStage): boolean => MOVING.has(stage);

export function describeDrive(d: Drive): string {
  return d.kind === 'partition' ? d.device : d.kind === 'mount' ? `${d.path} (${d.device})` : d.path;
}

/** The JSON the status socket serves for one drive. */
export function driveJson(s: DriveState) {
  const snap = s.progress?.snapshot();
  return {
    drive: describeDrive(s.drive),
    kind: s.drive.kind,
    stage: s.stage,
    ...(s.detail !== undefined && { detail: s.detail }),
    ...(s.jobId !== undefined && { jobId: s.jobId }),
    ...(s.root !== undefined && { root: s.root }),
    since: new Date(s.since).toISOString(),
    ...(snap && progressMoves(s.stage) && { progress: snap }),
    safeToUnplug: safeToUnplug(s.stage),
  };
}
