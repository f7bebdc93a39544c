import { hostname } from 'node:os';
import { describeDrive, progressMoves, safeToUnplug, type DriveStage, type DriveState } from '../daemon/drive-state.js';
import type { Job } from '../jobs/store.js';

/**
 * What the station screen shows, and nothing more: the page gets this JSON and no other data. Picked field by field
 * (never a whole Job, whose manifests and account are not for a screen anyone in the room can read); a file name
 * only with `screen.showFileNames`.
 */
export interface ScreenSnapshot {
  station: string;
  drives: ScreenDrive[];
  jobs: ScreenJob[];
}

export type Tone = 'wait' | 'busy' | 'good' | 'bad' | 'warn' | 'idle';

export interface ScreenDrive {
  /** stable across updates: the page keeps one card per id */
  id: string;
  device: string;
  stage: string;
  /** the stage in words, as the technician reads it */
  title: string;
  tone: Tone;
  detail?: string;
  jobId?: string;
  since: string;
  safeToUnplug: boolean;
  progress?: {
    /** files, not while erasing (an erase counts bytes of the device) */
    files?: number;
    totalFiles?: number;
    bytes: number;
    totalBytes: number;
    /** while loading or erasing only */
    bytesPerSecond?: number;
    etaSeconds?: number;
  };
  /** the file whose row came last; only with screen.showFileNames */
  lastFile?: string;
}

export interface ScreenJob {
  jobId: string;
  jobStatus: string;
  deviceStatus: string;
  errorCount?: number;
  /** `bucket/key` of the stored import log */
  log?: string;
  reason?: string;
  updatedAt: string;
}

/** The words and colour of each stage: a stage added to `DriveStage` must get its words here (type-checked). */
const STAGES: Record<DriveStage, { title: string; tone: Tone }> = {
  waiting: { title: 'Waiting', tone: 'wait' },
  mounting: { title: 'Mounting', tone: 'wait' },
  verifying: { title: 'Verifying SIGNATURE', tone: 'wait' },
  loading: { title: 'Loading', tone: 'busy' },
  done: { title: 'Done — safe to unplug', tone: 'good' },
  refused: { title: 'Refused — set aside', tone: 'bad' },
  removed: { title: 'Drive removed — plug it back', tone: 'warn' },
  interrupted: { title: 'Stopped — plug it back to resume', tone: 'warn' },
  'set-aside': { title: 'Set aside — not for this station', tone: 'idle' },
  erasing: { title: 'Erasing — do not unplug', tone: 'busy' },
  erased: { title: 'Erased — safe to unplug', tone: 'good' },
  'erase-failed': { title: 'Not erased — safe to unplug', tone: 'warn' },
};

/** Stages in or after which a drive's counts mean something: how far it got (an erase: bytes overwritten). */
const SHOWS_PROGRESS = new Set<string>(['loading', 'done', 'removed', 'interrupted', 'erasing']);

export const RECENT_JOBS = 10;

export function screenSnapshot(drives: DriveState[], jobs: Array<{ job: Job; updatedAt: number }>, showFileNames: boolean): ScreenSnapshot {
  return { station: hostname(), drives: drives.map((s) => screenDrive(s, showFileNames)), jobs: jobs.map(screenJob) };
}

function screenDrive(s: DriveState, showFileNames: boolean): ScreenDrive {
  const words = STAGES[s.stage];
  const moving = progressMoves(s.stage);
  const erasing = s.stage === 'erasing';
  const p = s.progress && SHOWS_PROGRESS.has(s.stage) ? s.progress.snapshot() : undefined;
  return {
    id: s.drive.id,
    device: describeDrive(s.drive),
    stage: s.stage,
    ...words,
    ...(s.detail !== undefined && { detail: s.detail }),
    ...(s.jobId !== undefined && { jobId: s.jobId }),
    since: new Date(s.since).toISOString(),
    safeToUnplug: safeToUnplug(s.stage), // one rule for the screen and `station status`
    ...(p && {
      progress: {
        ...(!erasing && { files: p.files, totalFiles: p.totalFiles }),
        bytes: p.bytes,
        totalBytes: p.totalBytes,
        ...(moving && { bytesPerSecond: p.bytesPerSecond }),
        ...(moving && p.etaSeconds !== undefined && { etaSeconds: p.etaSeconds }),
      },
    }),
    ...(showFileNames && p && s.progress?.lastFile !== undefined && { lastFile: s.progress.lastFile }),
  };
}

function screenJob({ job, updatedAt }: { job: Job; updatedAt: number }): ScreenJob {
  return {
    jobId: job.id,
    jobStatus: job.jobStatus,
    deviceStatus: job.deviceStatus,
    ...(job.errorCount !== undefined && { errorCount: job.errorCount }),
    ...(job.logBucket !== undefined && job.logKey !== undefined && { log: `${job.logBucket}/${job.logKey}` }),
    ...(job.reason !== undefined && { reason: job.reason }),
    updatedAt: new Date(updatedAt).toISOString(),
  };
}
