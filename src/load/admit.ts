import { constants } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Exit, StationError, usageError } from '../errors.js';
import { isJobId, normalizeJobId } from '../jobs/ids.js';
import type { Job, JobStore } from '../jobs/store.js';
import { parseManifest } from '../manifest/parse.js';
import type { Manifest } from '../manifest/types.js';
import { parseSignatureFile, shown, sign, signatureMatches } from '../signature.js';

/** A load refused or aborted: exit 4, with the contract's name where it has one. */
export function loadRefused(code: string, message: string): StationError {
  return new StationError(code, message, Exit.aborted);
}

type SignatureRead =
  | { state: 'ok'; jobId: string; signature: string }
  | { state: 'missing'; why: string }
  | { state: 'malformed'; why: string; jobId?: string };

/** A SIGNATURE is four short lines; anything larger is not one, and is not read into memory to find out. */
export const MAX_SIGNATURE_BYTES = 64 * 1024;

/**
 * The SIGNATURE at a device's root, read and parsed; what is wrong with it, in words, if anything. The device is
 * the customer's: the name is never followed if it is a symbolic link (it could point anywhere on the station),
 * a FIFO or device named SIGNATURE is not opened in a way that could block, and at most 64 KiB are read.
 * Something named SIGNATURE that is not a readable file of that size is `malformed` (the job, if known, becomes
 * InvalidSignature): it is there, so "missing" would send the operator looking for it.
 */
export async function readSignature(root: string): Promise<SignatureRead> {
  const path = join(root, 'SIGNATURE');
  const malformed = (why: string): SignatureRead => ({ state: 'malformed', why: `SIGNATURE ${why}` });
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a symbolic link fails with ELOOP instead of being opened; O_NONBLOCK: a FIFO opens at once.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { state: 'missing', why: 'no SIGNATURE file at the root of the device' };
    if (e.code === 'ELOOP') return malformed('is a symbolic link, which the station never follows: it must be a file on the device');
    return { state: 'missing', why: `SIGNATURE unreadable: ${e.code ?? e.message}` };
  }
  let bytes: Buffer;
  try {
    const st = await handle.stat();
    if (st.isDirectory()) return malformed('is a directory, not a file');
    if (!st.isFile()) return malformed('is not a regular file (a FIFO, socket or device)');
    if (st.size > MAX_SIGNATURE_BYTES) return malformed(`is ${st.size} bytes: a SIGNATURE file is at most 64 KiB`);
    // One byte more than allowed: a file that grew since the stat still shows as too large.
    const buf = Buffer.alloc(MAX_SIGNATURE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_SIGNATURE_BYTES) return malformed('is over 64 KiB: a SIGNATURE file is at most 64 KiB');
    bytes = buf.subarray(0, bytesRead);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { state: 'missing', why: `SIGNATURE unreadable: ${e.code ?? e.message}` };
  } finally {
    await handle.close();
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return malformed('is not text (not valid UTF-8)');
  }
  const parsed = parseSignatureFile(text);
  if (!parsed.ok) return malformed(`is malformed: ${parsed.problem}`);
  if (!isJobId(parsed.file.jobId)) return malformed(`names "${shown(parsed.file.jobId)}", which is not a job ID`);
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
