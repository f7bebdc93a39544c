import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/** One thread of the MD5 pool (md5-pool.ts): hashes a body held in a SharedArrayBuffer, without a copy. */
parentPort!.on('message', (m: { id: number; buffer: SharedArrayBuffer; offset: number; length: number }) => {
  try {
    const md5 = createHash('md5').update(new Uint8Array(m.buffer, m.offset, m.length)).digest();
    parentPort!.postMessage({ id: m.id, md5 });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
