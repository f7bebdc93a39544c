import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * MD5s of bodies (single PUTs, parts) on worker threads, so the main thread is free to read, sign and send: on a
 * drive of mid-sized files MD5 was a fifth of the main thread's time, and the main thread is what limits a load.
 * A body must live in a SharedArrayBuffer (no copy to the worker); one that does not, or a small one (messaging
 * would cost more than hashing), is hashed right here.
 */
export class Md5Pool {
  private readonly workers: Array<{ worker: Worker; busy: number }> = [];
  private readonly waiting = new Map<number, { resolve: (md5: Buffer) => void; reject: (err: Error) => void; worker: number }>();
  private nextId = 1;

  constructor(private readonly size = Math.max(1, Math.min(4, availableParallelism()))) {}

  /** The MD5 of `body`'s bytes. */
  digest(body: Buffer): Promise<Buffer> {
    if (body.length < POOL_MIN_BYTES || !(body.buffer instanceof SharedArrayBuffer)) {
      return Promise.resolve(createHash('md5').update(body).digest());
    }
    const index = this.leastBusy();
    const slot = this.workers[index]!;
    const id = this.nextId++;
    // An idle pool never keeps the process alive; a busy one must, or a process waiting only for a hash would end.
    if (slot.busy++ === 0) slot.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, worker: index });
      slot.worker.postMessage({ id, buffer: body.buffer, offset: body.byteOffset, length: body.length });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private leastBusy(): number {
    if (this.workers.length < this.size && this.workers.every((w) => w.busy > 0)) this.workers.push(this.spawn(this.workers.length));
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.workers[i]!.busy < this.workers[best]!.busy) best = i;
    return best;
  }

  private spawn(index: number): { worker: Worker; busy: number } {
    const worker = new Worker(new URL('./md5-pool-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (m: { id: number; md5?: Uint8Array; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      const slot = this.workers[index]!;
      if (--slot.busy === 0) slot.worker.unref();
      if (m.md5) w.resolve(Buffer.from(m.md5));
      else w.reject(new Error(`MD5 worker: ${m.error}`));
    });
    worker.on('error', (err) => {
      for (const [id, w] of this.waiting) {
        if (w.worker !== index) continue;
        this.waiting.delete(id);
        this.workers[index]!.busy--;
        w.reject(err);
      }
    });
    return { worker, busy: 0 };
  }
}

/** Bodies smaller than this are hashed on the calling thread. */
const POOL_MIN_BYTES = 256 * 1024;
