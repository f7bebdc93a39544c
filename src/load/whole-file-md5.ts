import { Worker } from 'node:worker_threads';

/**
 * The running MD5 of a multipart file, kept by a worker thread (md5-worker.ts). Parts must be given in order;
 * each `part()` resolves with the hash's saved state after that part, which the journal keeps so a resumed
 * upload continues the hash without reading again what was sent.
 */
export class WholeFileMd5 {
  private readonly worker: Worker;
  private readonly waiting = new Map<string, Array<{ resolve: (v: never) => void; reject: (e: Error) => void }>>();

  private constructor() {
    this.worker = new Worker(new URL('./md5-worker.js', import.meta.url));
    this.worker.on('message', (m: { type: string; n?: number; state?: Uint8Array; md5?: string; message?: string }) => {
      if (m.type === 'error') {
        for (const list of this.waiting.values()) for (const w of list) w.reject(new Error(`MD5 worker: ${m.message}`));
        this.waiting.clear();
        return;
      }
      const key = m.type === 'part' ? `part ${m.n}` : m.type;
      const next = this.waiting.get(key)?.shift();
      next?.resolve((m.type === 'part' ? m.state : m.type === 'digest' ? m.md5 : undefined) as never);
    });
    this.worker.on('error', (err) => {
      for (const list of this.waiting.values()) for (const w of list) w.reject(err);
      this.waiting.clear();
    });
  }

  /** A fresh hash, or one continued from a saved state. */
  static async start(state?: Uint8Array): Promise<WholeFileMd5> {
    const md5 = new WholeFileMd5();
    const started = md5.expect<void>('started');
    md5.worker.postMessage({ type: 'start', ...(state && { state }) });
    await started;
    return md5;
  }

  /** Hashes part `n` (held in a SharedArrayBuffer); resolves with the saved state once it is hashed. */
  part(n: number, body: Buffer): Promise<Uint8Array> {
    const hashed = this.expect<Uint8Array>(`part ${n}`);
    this.worker.postMessage({ type: 'part', n, buffer: body.buffer, offset: body.byteOffset, length: body.length });
    return hashed;
  }

  async digest(): Promise<string> {
    const md5 = this.expect<string>('digest');
    this.worker.postMessage({ type: 'digest' });
    return md5;
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }

  private expect<T>(key: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const list = this.waiting.get(key) ?? [];
      list.push({ resolve: resolve as (v: never) => void, reject });
      this.waiting.set(key, list);
    });
  }
}
