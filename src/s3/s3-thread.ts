import { Worker } from 'node:worker_threads';
import type { S3Settings } from '../config.js';
import { SpareThread } from '../spare-thread.js';
import type { S3Answer, S3Request } from './direct.js';
import { S3Refused, S3Unreachable } from './errors.js';
import type { Credentials } from './sigv4.js';

/** What goes back from the thread when a request failed: enough to raise the same error here. */
export type ThreadFailure = { kind: 'refused'; status: number; code: string; message: string } | { kind: 'unreachable' | 'error'; message: string };

/**
 * The station's S3 requests (`DirectS3`) sent from a thread of their own. On a drive of small files one thread was
 * the limit of a load: per file it read, hashed, journaled, and also signed, sent and parsed the answer, while the
 * second core had room. Here the main thread reads and hashes the next files while this thread signs and sends; a
 * body stays in the station's shared memory (no copy) until its answer is back.
 *
 * The thread signs with credentials it asks this side for (credentials.ts, which refreshes expiring ones);
 * failures come back classified as `S3Refused` / `S3Unreachable`, after DirectS3's retries.
 */
export class S3Thread {
  private worker: Worker;
  private readonly waiting = new Map<number, { resolve: (answer: S3Answer) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  /** why the thread is gone: what was in flight failed with it, and the next request starts another thread */
  private ended: Error | undefined;
  private destroyed = false;

  constructor(
    private readonly credentials: () => Promise<Credentials>,
    private readonly data: { s3: S3Settings; maxAttempts: number; maxSockets: number },
  ) {
    this.worker = this.start();
  }

  /** Whether a station with these settings sends its requests from an S3Thread (its bodies are unsigned payloads). */
  static usedFor(s3: S3Settings): boolean {
    return s3.directPut && s3.unsignedPayload;
  }

  /** Starts the thread of the next S3Thread now (SpareThread): `station load`'s first request waited for it. */
  static prestart(): void {
    spare.start();
  }

  private start(): Worker {
    this.ended = undefined;
    const worker = spare.take();
    worker.postMessage({ type: 'settings', ...this.data });
    worker.on('message', (m: { type: 'credentials' } | { id: number; answer?: S3Answer; failure?: ThreadFailure }) => {
      if ('type' in m) {
        this.credentials().then(
          (identity) => worker.postMessage({ type: 'credentials', identity }),
          (err: Error) => worker.postMessage({ type: 'credentials', failure: err.message }),
        );
        return;
      }
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.settled(m.id);
      if (m.failure) w.reject(asError(m.failure));
      else w.resolve(m.answer!);
    });
    worker.on('error', (err) => this.end(worker, new Error(`S3 thread: ${err.message}`)));
    worker.on('exit', (code) => this.end(worker, new Error(`S3 thread ended (exit code ${code})`)));
    return worker;
  }

  private end(worker: Worker, why: Error): void {
    if (worker !== this.worker) return;
    this.ended ??= why;
    for (const [id, w] of this.waiting) {
      this.settled(id);
      w.reject(this.ended);
    }
  }

  /** Sends one request. A body in shared memory goes without a copy, and must not change until the answer. */
  request(req: S3Request): Promise<S3Answer> {
    if (this.destroyed) return Promise.reject(new Error('S3 thread ended (the station is closing)'));
    if (this.ended) this.worker = this.start();
    const id = this.nextId++;
    // A thread with requests in flight keeps the process alive; an idle one does not.
    if (this.waiting.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      const { body, ...rest } = req;
      // (a Buffer whose memory is not shared would be copied whole: a small one may sit in Node's 8 KiB pool)
      const shared = body && body.buffer instanceof SharedArrayBuffer ? body : body && new Uint8Array(body);
      this.worker.postMessage({ id, request: rest, ...(shared && { buffer: shared.buffer, offset: shared.byteOffset, length: shared.length }) });
    });
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.worker.terminate();
  }

  private settled(id: number): void {
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker.unref();
  }
}

function spawn(): Worker {
  const worker = new Worker(new URL('./s3-thread-worker.js', import.meta.url), {
    // Everything this thread makes dies with its request. Left to itself V8 grew its heap with the length of the
    // load (young generation 16 MiB on the mixed drive, 32 on one 10x larger; the whole heap 35 MiB with 6.5 live);
    // bounded, it stays near 20 MiB. 24 MiB of old generation is nearly four times what it holds with every request
    // in flight (a thread past it would end: its requests fail, and the next one starts another thread); with 48 its heap
    // still drifted from 16 to 21 MiB between the mixed drive and the one 10x larger.
    resourceLimits: { maxYoungGenerationSizeMb: 6, maxOldGenerationSizeMb: 24 },
  });
  worker.unref();
  return worker;
}

const spare = new SpareThread(spawn);

function asError(f: ThreadFailure): Error {
  if (f.kind === 'refused') return new S3Refused(f.status, f.code, f.message);
  if (f.kind === 'unreachable') return new S3Unreachable(f.message);
  return new Error(`S3 thread: ${f.message}`);
}
