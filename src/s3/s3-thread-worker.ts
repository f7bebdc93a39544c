import { parentPort } from 'node:worker_threads';
import type { S3Settings } from '../config.js';
import { DirectS3, type S3Request } from './direct.js';
import { S3Refused, S3Unreachable } from './errors.js';
import type { ThreadFailure } from './s3-thread.js';
import type { Credentials } from './sigv4.js';

/**
 * The thread of `S3Thread` (s3-thread.ts): one DirectS3, its keep-alive connections and signer. Its settings
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

let direct: DirectS3 | undefined;

type Message =
  | { type: 'settings'; s3: S3Settings; maxAttempts: number; maxSockets: number }
  | { type: 'credentials'; identity?: Credentials; failure?: string }
  | { type?: undefined; id: number; request: Omit<S3Request, 'body'> & { md5?: Uint8Array }; buffer?: ArrayBufferLike; offset?: number; length?: number };

port.on('message', async (m: Message) => {
  if (m.type === 'settings') {
    direct = new DirectS3(credentials, m.s3, m.maxAttempts, m.maxSockets);
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
    const { md5, ...rest } = m.request;
    const request: S3Request = {
      ...rest,
      ...(m.buffer && { body: Buffer.from(m.buffer, m.offset, m.length) }),
      ...(md5 && { md5: Buffer.from(md5.buffer, md5.byteOffset, md5.byteLength) }),
    };
    port.postMessage({ id: m.id, answer: await direct!.request(request) });
  } catch (err) {
    port.postMessage({ id: m.id, failure: failureOf(err) });
  }
});

function failureOf(err: unknown): ThreadFailure {
  const message = (err as Error).message ?? String(err);
  if (err instanceof S3Refused) return { kind: 'refused', status: err.status, code: err.code, message };
  if (err instanceof S3Unreachable) return { kind: 'unreachable', message };
  return { kind: 'error', message };
}
