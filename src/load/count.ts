import { Worker } from 'node:worker_threads';
import type { Manifest } from '../manifest/types.js';
import { KeyClaims, KeyMapper } from './keys.js';
import { walk } from './walk.js';

export interface DeviceTotals {
  /** entries the load will log a row for */
  files: number;
  /** bytes of the files it will upload */
  bytes: number;
}

/**
 * The totals of a device, counted on a thread of its own: the count walks every entry before the uploads reach
 * them, and on the main thread its metadata calls were a tenth of a load of small files. Undefined when `stop`
 * came first (the thread is ended).
 */
export function countDevice(root: string, manifest: Manifest, stop: AbortSignal): Promise<DeviceTotals | undefined> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./count-worker.js', import.meta.url), { workerData: { root, manifest } });
    stop.addEventListener('abort', () => {
      resolve(undefined);
      void worker.terminate();
    });
    worker.once('message', (m: DeviceTotals | { error: string; code?: string }) => {
      if ('error' in m) reject(Object.assign(new Error(m.error), m.code !== undefined && { code: m.code }));
      else resolve(m);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the count of ${root} ended without an answer (exit ${code})`)));
  });
}

/** The count itself: the entries the walk yields, and the bytes of those that get a key (the first to claim it). */
export function countEntries(root: string, manifest: Manifest): DeviceTotals {
  const mapper = new KeyMapper(manifest);
  const claims = KeyClaims.for(manifest);
  let files = 0;
  let bytes = 0;
  for (const e of walk(root, { ignoresDir: (dir) => mapper.ignores(dir) })) {
    files++;
    const plan = mapper.plan(e);
    if ('key' in plan && claims.claim(plan.key, e.text!) === undefined) bytes += e.size;
  }
  return { files, bytes };
}
