import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SpareThread } from '../spare-thread.js';

/**
 * MD5s on a fixed set of worker threads, so the main thread is free to read, sign and send: on a drive of
 * mid-sized files MD5 was a fifth of the main thread's time, and the main thread is what limits a load. Two kinds
 * of work: the MD5 of one body (a single PUT), and the running MD5 of a whole multipart file, which one thread
 * owns from start to end so its parts are hashed in order; each part's own MD5 comes from the same pass
 * (md5-lanes.ts). One set of threads for both: a thread per multipart file cost a thread's start-up each time and
 * memory that grew with the number of files.
 *
 * A body must live in a SharedArrayBuffer (no copy to the worker); one that does not, or a small one (messaging
 * would cost more than hashing), is hashed right here.
 */
export class Md5Pool {
  private readonly workers: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (md5: Buffer | undefined) => void; reject: (err: Error) => void; slot: Slot }>();
  private nextId = 1;

  constructor(private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  /** The MD5 of `body`'s bytes. */
  digest(body: Buffer): Promise<Buffer> {
    if (body.length < POOL_MIN_BYTES || !(body.buffer instanceof SharedArrayBuffer)) {
      return Promise.resolve(createHash('md5').update(body).digest());
    }
    return this.ask(this.leastBusy(), { type: 'digest', ...shared(body) }) as Promise<Buffer>;
  }

  /** A running MD5, fed bodies in order, kept on one thread: the thread that keeps one other, so that their
   * pieces can pair in the SIMD lanes (two files' hashing on one core instead of two), else the least busy. */
  running(): RunningMd5 {
    const slot = this.workers.find((w) => !w.ended && w.streams % 2 === 1) ?? this.leastBusy();
    const stream = this.nextId++;
    slot.streams++;
    let closed = false;
    return {
      next: async (body) => (await this.ask(slot, { type: 'next', stream, ...shared(body) }))!,
      digest: async () => (await this.ask(slot, { type: 'end', stream }))!.toString('hex'),
      close: () => {
        if (closed) return;
        closed = true;
        slot.streams--;
        slot.worker.postMessage({ id: 0, type: 'drop', stream });
      },
    };
  }

  /** Starts a pool thread now, for the first pool to take (SpareThread). */
  static prestart(): void {
    spare.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private ask(slot: Slot, message: Record<string, unknown>): Promise<Buffer | undefined> {
    // A thread that died takes its running hashes with it: what was asked of it fails, and so does what is asked
    // of it later (a running hash cannot move to another thread).
    if (slot.ended) return Promise.reject(slot.ended);
    const id = this.nextId++;
    // An idle pool never keeps the process alive; a busy one must, or a process waiting only for a hash would end.
    if (slot.busy++ === 0) slot.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      slot.worker.postMessage({ id, ...message });
    });
  }

  /** The live thread with the least work queued; a running hash counts as much as a queued body. */
  private leastBusy(): Slot {
    const load = (w: Slot) => w.busy + w.streams;
    const live = this.workers.filter((w) => !w.ended);
    if (live.length < this.size && live.every((w) => load(w) > 0)) {
      const fresh = this.spawn();
      this.workers.push(fresh);
      return fresh;
    }
    return live.reduce((best, w) => (load(w) < load(best) ? w : best));
  }

  private spawn(): Slot {
    const worker = spare.take();
    const slot: Slot = { worker, busy: 0, streams: 0 };
    worker.unref();
    worker.on('message', (m: { id: number; md5?: Uint8Array; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (--slot.busy === 0) worker.unref();
      if (m.error !== undefined) w.reject(new Error(`MD5 worker: ${m.error}`));
      else w.resolve(m.md5 && Buffer.from(m.md5));
    });
    const end = (why: Error) => {
      slot.ended ??= why;
      for (const [id, w] of this.waiting) {
        if (w.slot !== slot) continue;
        this.waiting.delete(id);
        slot.busy--;
        w.reject(slot.ended);
      }
    };
    worker.on('error', (err) => end(new Error(`MD5 worker: ${err.message}`)));
    worker.on('exit', (code) => end(new Error(`MD5 worker ended (exit code ${code})`)));
    return slot;
  }
}

/** The MD5 of a sequence of bodies (a multipart file's parts), computed as they come. */
export interface RunningMd5 {
  /** Takes in the next body, and answers the body's own MD5 (both hashes from one pass over it); once it
   * resolves, the body's memory may be reused. */
  next(body: Buffer): Promise<Buffer>;
  /** The hex MD5 of everything taken in; the hash ends. */
  digest(): Promise<string>;
  /** Lets go of the hash (after `digest`, or when the file is given up). */
  close(): void;
}

interface Slot {
  worker: Worker;
  /** requests sent and not answered */
  busy: number;
  /** running hashes this thread owns */
  streams: number;
  /** why the thread is gone */
  ended?: Error;
}

const spare = new SpareThread(() => new Worker(new URL('./md5-pool-worker.js', import.meta.url)));

const shared = (body: Buffer) => ({ buffer: body.buffer, offset: body.byteOffset, length: body.length });

/** Bodies smaller than this are hashed on the calling thread. */
const POOL_MIN_BYTES = 256 * 1024;
