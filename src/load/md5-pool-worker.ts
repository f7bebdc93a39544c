import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { Md5, prepareLanes, updateAll, updatePair } from './md5-lanes.js';

/**
 * One thread of the MD5 pool (md5-pool.ts): hashes bodies held in a SharedArrayBuffer, without a copy, either
 * alone or as the next piece of a running hash this thread keeps. Messages from the pool arrive in the order they
 * were sent, which keeps a running hash's pieces in order; they wait in a queue, so that the next pieces of two
 * running hashes can go through the SIMD lanes together.
 */
type Body = { buffer: SharedArrayBuffer; offset: number; length: number };
type Message = { id: number } & (
  | ({ type: 'digest' } & Body)
  | ({ type: 'next'; stream: number } & Body)
  | { type: 'end'; stream: number }
  | { type: 'drop'; stream: number }
);
type Next = Extract<Message, { type: 'next' }>;

const running = new Map<number, Md5>();
const queue: Message[] = [];
let scheduled = false;

parentPort!.on('message', (m: Message) => {
  queue.push(m);
  schedule();
});

// The kernel is compiled while the thread waits for its first body, not when the first part of a large file is
// there to hash (~20 ms at the start of a load; a thread that only ever digests bodies wasted them).
setImmediate(prepareLanes);

function schedule(): void {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  // One piece of work at a time, letting messages in between: a piece that came meanwhile may pair with the next.
  setImmediate(() => {
    scheduled = false;
    const m = queue.shift()!;
    const partner = m.type === 'next' ? takePartner(m.stream) : undefined;
    if (partner) answer([m, partner as Next], () => nextPair(m as Next, partner));
    else answer([m], () => [handle(m)]);
    schedule();
  });
}

/** The queued next piece of another running hash, if nothing of that hash is queued before it. */
function takePartner(stream: number): Next | undefined {
  const seen = new Set<number>([stream]);
  for (const [i, q] of queue.entries()) {
    if (q.type === 'digest') continue;
    if (!seen.has(q.stream) && q.type === 'next') return queue.splice(i, 1)[0] as Next;
    seen.add(q.stream);
  }
  return undefined;
}

function handle(m: Message): Buffer | undefined {
  if (m.type === 'digest') {
    // One hash: Node's MD5 is the faster one.
    return createHash('md5').update(bytes(m)).digest();
  }
  if (m.type === 'next') {
    // The body's own MD5 and the running one, in one pass over its bytes.
    const body = new Md5();
    updateAll([body, stream(m.stream)], bytes(m));
    return body.digest();
  }
  if (m.type === 'end') {
    const md5 = stream(m.stream).digest();
    running.delete(m.stream);
    return md5;
  }
  running.delete(m.stream);
  return undefined;
}

/** Two running hashes' next pieces, each into its own MD5 and its hash's, in one pass. */
function nextPair(a: Next, b: Next): Buffer[] {
  const [ownA, ownB] = [new Md5(), new Md5()];
  updatePair({ hashes: [ownA, stream(a.stream)], data: bytes(a) }, { hashes: [ownB, stream(b.stream)], data: bytes(b) });
  return [ownA.digest(), ownB.digest()];
}

function answer(messages: Message[], work: () => Array<Buffer | undefined>): void {
  try {
    const md5s = work();
    messages.forEach((m, i) => m.type !== 'drop' && parentPort!.postMessage({ id: m.id, md5: md5s[i] }));
  } catch (err) {
    for (const m of messages) parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
}

function stream(id: number): Md5 {
  let hash = running.get(id);
  if (!hash) running.set(id, (hash = new Md5()));
  return hash;
}

const bytes = (m: Body) => new Uint8Array(m.buffer, m.offset, m.length);
