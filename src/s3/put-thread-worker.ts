import { parentPort } from 'node:worker_threads';
import type { S3Settings } from '../config.js';
import { DirectPut } from './direct-put.js';
import { S3Refused, S3Unreachable } from './errors.js';
import type { PutFailure } from './put-thread.js';
import type { Credentials } from './sigv4.js';

/**
 * The thread of `PutThread` (put-thread.ts): one DirectPut, its keep-alive connections and signer. Its settings
 * come in the first message, not with the thread: a thread can start (and load its modules) before the station
 * has read its config and loaded the rest.
 */
const port = parentPort!;

// Credentials come from the main thread's provider chain: asked for at the first request, and again when they
// expire within five minutes (temporary credentials); static keys are asked for once.
let identity: Credentials | undefined;
let asking: { promise: Promise<Credentials>; resolve: (id: Credentials) => void; reject: (err: Error) => void } | undefined;
const credentials = async (): Promise<Credentials> => {
  const fresh = identity && (!identity.expiration || identity.expiration.getTime() - Date.now() > 5 * 60_000);
  if (fresh) return identity!;
  if (!asking) {
    let resolve!: (id: Credentials) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<Credentials>((res, rej) => ((resolve = res), (reject = rej)));
    asking = { promise, resolve, reject };
    port.postMessage({ type: 'credentials' });
  }
  return asking.promise;
};

let direct: DirectPut | undefined;

type Message =
  | { type: 'settings'; s3: S3Settings; maxAttempts: number; maxSockets: number }
  | { type: 'credentials'; identity?: Credentials; failure?: string }
  | {
      type?: undefined;
      id: number;
      bucket: string;
      key: string;
      buffer: SharedArrayBuffer;
      offset: number;
      length: number;
      md5: Uint8Array;
      headers: Record<string, string>;
      part?: { number: number; uploadId: string };
    };

port.on('message', async (m: Message) => {
  if (m.type === 'settings') {
    direct = new DirectPut(credentials, m.s3, m.maxAttempts, m.maxSockets);
    return;
  }
  if (m.type === 'credentials') {
    const waiting = asking;
    asking = undefined;
    if (m.identity) waiting?.resolve((identity = m.identity));
    else waiting?.reject(new Error(`no S3 credentials: ${m.failure}`));
    return;
  }
  try {
    const body = Buffer.from(m.buffer, m.offset, m.length);
    const md5 = Buffer.from(m.md5.buffer, m.md5.byteOffset, m.md5.byteLength);
    port.postMessage({ id: m.id, etag: await direct!.put(m.bucket, m.key, body, md5, m.headers, m.part) });
  } catch (err) {
    port.postMessage({ id: m.id, failure: failureOf(err) });
  }
});

function failureOf(err: unknown): PutFailure {
  const message = (err as Error).message ?? String(err);
  if (err instanceof S3Refused) return { kind: 'refused', status: err.status, code: err.code, message };
  if (err instanceof S3Unreachable) return { kind: 'unreachable', message };
  return { kind: 'error', message };
}
