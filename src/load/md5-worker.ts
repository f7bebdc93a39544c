import { parentPort } from 'node:worker_threads';
import { createMD5, type IHasher } from 'hash-wasm';

/**
 * The whole-file MD5 of one multipart file, in its own thread: the main thread hashes each part for its
 * Content-MD5 while this one hashes the parts in order, so a large file's two hashes use both cores. Parts
 * arrive as SharedArrayBuffers (no copy); after each, the hash's saved state goes back for the journal.
 */
type Message = { type: 'start'; state?: Uint8Array } | { type: 'part'; n: number; buffer: SharedArrayBuffer; offset: number; length: number } | { type: 'digest' };

let hasher: IHasher | undefined;

parentPort!.on('message', async (m: Message) => {
  try {
    if (m.type === 'start') {
      hasher = await createMD5();
      hasher.init();
      if (m.state) hasher.load(m.state);
      parentPort!.postMessage({ type: 'started' });
    } else if (m.type === 'part') {
      hasher!.update(new Uint8Array(m.buffer, m.offset, m.length));
      parentPort!.postMessage({ type: 'part', n: m.n, state: hasher!.save() });
    } else {
      parentPort!.postMessage({ type: 'digest', md5: hasher!.digest('hex') });
    }
  } catch (err) {
    parentPort!.postMessage({ type: 'error', message: (err as Error).message });
  }
});
