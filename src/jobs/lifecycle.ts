/**
 * Job and device statuses and the moves allowed between them (contract §1, §7). A status only moves forward; a
 * terminal status never changes.
 */

export const JOB_STATUSES = [
  'Pending',
  'InProgress',
  'Completed',
  'CompletedWithErrors',
  'Canceled',
  'Expired',
  'MissingSignature',
  'InvalidSignature',
  'DeviceError',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const DEVICE_STATUSES = ['NotReceived', 'AtAWS', 'Returned'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

const ABORTED: JobStatus[] = ['Canceled', 'MissingSignature', 'InvalidSignature', 'DeviceError'];

const JOB_MOVES: Record<JobStatus, readonly JobStatus[]> = {
  Pending: ['InProgress', 'Expired', ...ABORTED],
  InProgress: ['Completed', 'CompletedWithErrors', 'Canceled', 'DeviceError'],
  Completed: [],
  CompletedWithErrors: [],
  Canceled: [],
  Expired: [],
  MissingSignature: [],
  InvalidSignature: [],
  DeviceError: [],
};

const DEVICE_MOVES: Record<DeviceStatus, readonly DeviceStatus[]> = {
  NotReceived: ['AtAWS'],
  AtAWS: ['Returned'],
  Returned: [],
};

export function canMoveJob(from: JobStatus, to: JobStatus): boolean {
  return JOB_MOVES[from].includes(to);
}

/** An end status: no move leads out of it. */
export function isEnded(status: JobStatus): boolean {
  return JOB_MOVES[status].length === 0;
}

export function canMoveDevice(from: DeviceStatus, to: DeviceStatus): boolean {
  return DEVICE_MOVES[from].includes(to);
}

/** A job whose device has not arrived this long after creation is `Expired` [orig]. */
export const EXPIRY_MS = 30 * 24 * 3600 * 1000;
