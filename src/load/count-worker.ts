import { parentPort, workerData } from 'node:worker_threads';
import type { Manifest } from '../manifest/types.js';
import { countEntries } from './count.js';

/** The thread of `countDevice` (count.ts). */
const { root, manifest } = workerData as { root: string; manifest: Manifest };
try {
  parentPort!.postMessage(countEntries(root, manifest));
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  parentPort!.postMessage({ error: err.message, ...(err.code !== undefined && { code: err.code }) });
}
