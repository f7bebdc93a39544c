import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { Md5, updateAll } from './md5-lanes.js';

/**
 * One thread of the MD5 pool (md5-pool.ts): hashes bodies held in a SharedArrayBuffer, without a copy, either
 * alone or as the next piece of a running hash this thread keeps. Messages from the pool arrive in the order they
 * were sent, which keeps a running hash's pieces in order.
 */
type Message = { id: number } & (
  | { type: 'digest'; buffer: SharedArrayBuffer; offset: number; length: number }
  | { type: 'next'; stream: number; buffer: SharedArrayBuffer; offset: number; length: number }
  | { type: 'end'; stream: number }
  | { type: 'drop'; stream: number }
);

const running = new Map<number, Md5>();

parentPort!.on('message', (m: Message) => {
  try {
    if (m.type === 'digest') {
      // One hash: Node's MD5 is the faster one.
      parentPort!.postMessage({ id: m.id, md5: createHash('md5').update(new Uint8Array(m.buffer, m.offset, m.length)).digest() });
    } else if (m.type === 'next') {
      let hash = running.get(m.stream);
      if (!hash) running.set(m.stream, (hash = new Md5()));
      // The body's own MD5 and the running one, in one pass over its bytes.
      const body = new Md5();
      updateAll([body, hash], new Uint8Array(m.buffer, m.offset, m.length));
      parentPort!.postMessage({ id: m.id, md5: body.digest() });
    } else if (m.type === 'end') {
      const md5 = (running.get(m.stream) ?? new Md5()).digest();
      running.delete(m.stream);
      parentPort!.postMessage({ id: m.id, md5 });
    } else {
      running.delete(m.stream);
    }
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
