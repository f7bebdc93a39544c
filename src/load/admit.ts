import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Exit, StationError, usageError } from '../errors.js';
import { isJobId, normalizeJobId } from '../jobs/ids.js';
import type { Job, JobStore } from '../jobs/store.js';
import { parseManifest } from '../manifest/parse.js';
import type { Manifest } from '../manifest/types.js';
import { parseSignatureFile, sign, signatureMatches } from '../signature.js';

/** A load refused or aborted: exit 4, with the contract's name where it has one. */
export function loadRefused(code: string, message: string): StationError {
  return new StationError(code, message, Exit.aborted);
}

type SignatureRead =
  | { state: 'ok'; jobId: string; signature: string }
  | { state: 'missing'; why: string }
  | { state: 'malformed'; why: string; jobId?: string };

/** The SIGNATURE at a device's root, read and parsed; what is wrong with it, in words, if anything. */
export async function readSignature(root: string): Promise<SignatureRead> {
  let text: string;
  try {
    text = await readFile(join(root, 'SIGNATURE'), 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { state: 'missing', why: e.code === 'ENOENT' ? 'no SIGNATURE file at the root of the device' : `SIGNATURE unreadable: ${e.code ?? e.message}` };
  }
  const parsed = parseSignatureFile(text);
  if (!parsed.ok) return { state: 'malformed', why: `SIGNATURE is malformed: ${parsed.problem}` };
  if (!isJobId(parsed.file.jobId)) return { state: 'malformed', why: `SIGNATURE names "${parsed.file.jobId}", which is not a job ID` };
  return { state: 'ok', jobId: normalizeJobId(parsed.file.jobId), signature: parsed.file.signature };
}

/**
 * Admits a device to a load (contract §3): reads its SIGNATURE, finds the job, checks it against the manifest
 * given at CREATE JOB with the account's secret, and moves the statuses. A refusal uploads nothing and is an
 * exit-4 error; a known job's device is recorded as at the station either way.
 */
export async function admit(store: JobStore, root: string, jobHint?: string): Promise<{ job: Job; manifest: Manifest }> {
  const st = await stat(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw usageError(`${root}: no such directory`);
    throw loadRefused('UnreadableDevice', `${root}: ${err.code ?? err.message}`);
  });
  if (!st.isDirectory()) throw usageError(`${root} is not a directory (give the drive's mount point)`);

  const hint = jobHint === undefined ? undefined : normalizeJobId(jobHint);
  const unreadable = await readdir(root).then(
    () => undefined,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
  if (unreadable !== undefined) {
    const why = `the device cannot be read (${unreadable} listing ${root})`;
    if (hint !== undefined && store.find(hint)) markDeviceError(store, hint, why);
    throw loadRefused('DeviceError', `${why}: nothing loaded`);
  }
  const sig = await readSignature(root);
  if (sig.state === 'ok' && hint !== undefined && sig.jobId !== hint) {
    throw loadRefused('SignatureJobMismatch', `the SIGNATURE on ${root} names job ${sig.jobId}, not ${hint}: nothing loaded`);
  }
  const jobId = sig.state === 'ok' ? sig.jobId : hint;
  if (jobId === undefined && sig.state !== 'ok') {
    throw loadRefused(sig.state === 'missing' ? 'MissingSignature' : 'InvalidSignature', `${sig.why} on ${root}; pass --job JOBID (from the shipping label) to record it on the job`);
  }
  const found = store.find(jobId!);
  if (!found) throw loadRefused('InvalidJobId', `job ${jobId} (${sig.state === 'ok' ? 'named by the SIGNATURE' : 'from --job'}) is not on this station: nothing loaded`);
  if (found.deviceStatus === 'NotReceived') store.moveDevice(found.id, 'AtAWS', { note: `device at ${root}` });

  const job = store.get(found.id);
  if (job.jobStatus !== 'Pending' && job.jobStatus !== 'InProgress') {
    throw loadRefused('JobNotLoadable', `job ${job.id} is ${job.jobStatus}: nothing loaded`);
  }
  const refuse = (status: 'MissingSignature' | 'InvalidSignature', why: string): never => {
    // A load in progress keeps its status: its device was verified when it started.
    if (job.jobStatus === 'Pending') store.moveJob(job.id, status, why);
    throw loadRefused(status, `job ${job.id}: ${why}: nothing loaded; the device is to be returned`);
  };
  if (sig.state === 'missing') refuse('MissingSignature', sig.why);
  if (sig.state === 'malformed') refuse('InvalidSignature', sig.why);
  const expected = sign(store.secretKeyOf(job.accessKeyId), job.id, job.originalManifest);
  if (!signatureMatches(expected, (sig as { signature: string }).signature)) {
    refuse('InvalidSignature', 'the SIGNATURE does not verify against the manifest given at CREATE JOB');
  }
  const loading = job.jobStatus === 'Pending' ? store.moveJob(job.id, 'InProgress', `loading from ${root}`) : job;
  return { job: loading, manifest: parseManifest(loading.currentManifest) };
}

/**
 * A device that cannot be read or mounted: its job (if it may still end so) becomes `DeviceError` with the
 * reason, and the device is recorded as at the station, to be returned.
 */
export function markDeviceError(store: JobStore, jobId: string, reason: string): void {
  const job = store.get(jobId);
  if (job.deviceStatus === 'NotReceived') store.moveDevice(job.id, 'AtAWS', { note: 'device unreadable' });
  if (job.jobStatus === 'Pending' || job.jobStatus === 'InProgress') store.moveJob(job.id, 'DeviceError', reason);
}
