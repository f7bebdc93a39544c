import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import Agent from 'undici/lib/dispatcher/agent.js';
import type { S3Settings } from '../config.js';
import { S3Refused, S3Unreachable } from './errors.js';
import { PutSigner, canonicalQuery, uriEncode, type Credentials } from './sigv4.js';

/**
 * Single PUTs and the parts of multipart uploads sent without the SDK's command pipeline: signed by PutSigner
 * (sigv4.ts), sent on keep-alive connections by undici's Agent. For many small files the pipeline (serialize, endpoint rules, middleware,
 * deserialize) costs about four times the CPU of signing and sending, and decides how fast a drive of small files
 * goes (docs/benchmarks.md); undici sends a PUT for about two thirds of the CPU node:http takes. Every
 * body carries its Content-MD5 and an unsigned payload, as through the SDK; failures are classified the same way
 * (`S3Refused` with S3's status and code, `S3Unreachable` when no answer came), after the same number of tries.
 */
export class DirectPut {
  private readonly signer: PutSigner;
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly virtualHost: boolean;

  constructor(
    private readonly credentials: () => Promise<Credentials>,
    s3: S3Settings,
    private readonly maxAttempts: number,
    maxSockets: number,
  ) {
    this.signer = new PutSigner(s3.region);
    this.base = new URL(s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`);
    this.virtualHost = !s3.forcePathStyle;
    // A connection silent this long is dead (a pulled cable, a hung server): the request fails and is retried.
    // Idle connections are kept 10 s for the next files.
    const timeout = s3.requestTimeoutMs;
    this.agent = new Agent({ connections: maxSockets, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 10_000 });
  }

  destroy(): void {
    void this.agent.destroy().catch(() => {});
  }

  /**
   * PUTs one object, or with `part` one part of a multipart upload (UploadPart); returns its ETag (lower-case
   * hex, no quotes).
   */
  async put(
    bucket: string,
    key: string,
    body: Buffer,
    md5: Buffer,
    headers: Record<string, string>,
    part?: { number: number; uploadId: string },
  ): Promise<string> {
    const { hostname, port, path } = this.address(bucket, key);
    const host = port ? `${hostname}:${port}` : hostname;
    const origin = `${this.base.protocol}//${host}`;
    const query = part ? canonicalQuery({ partNumber: String(part.number), uploadId: part.uploadId }) : '';
    const what = part ? `UploadPart ${key} #${part.number}` : `PUT ${key}`;
    for (let attempt = 1; ; attempt++) {
      const signed: Record<string, string> = {
        ...headers,
        host,
        'content-length': String(body.length),
        'content-md5': md5.toString('base64'),
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      };
      this.signer.sign('PUT', path, query, signed, await this.credentials());
      let failure: S3Refused | S3Unreachable;
      try {
        const res = await this.send(signed, origin, query ? `${path}?${query}` : path, body);
        if (res.status < 300) return (res.etag ?? '').replace(/^"|"$/g, '').toLowerCase();
        failure = new S3Refused(res.status, res.code ?? `Http${res.status}`, `${what}: ${res.status} ${res.code ?? ''}`.trim());
        if (!retryable(res.status, res.code)) throw failure;
      } catch (err) {
        if (err instanceof S3Refused && !retryable(err.status, err.code)) throw err;
        failure = err instanceof S3Refused ? err : new S3Unreachable(`${what}: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim(), { cause: err });
      }
      if (attempt >= this.maxAttempts) throw failure;
      // Full jitter, as the SDK's standard retry strategy: up to 100 ms × 2^attempt, at most 20 s.
      await sleep(Math.random() * Math.min(20_000, 100 * 2 ** attempt));
    }
  }

  private address(bucket: string, key: string): { hostname: string; port: string; path: string } {
    const encodedKey = PLAIN_KEY.test(key) ? key : key.split('/').map(uriEncode).join('/');
    const prefix = this.base.pathname.replace(/\/$/, '');
    // Virtual-hosted style where the bucket name is a valid host label (no dots under TLS), path style otherwise.
    if (this.virtualHost && !(bucket.includes('.') && this.base.protocol === 'https:')) {
      return { hostname: `${bucket}.${this.base.hostname}`, port: this.base.port, path: `${prefix}/${encodedKey}` };
    }
    return { hostname: this.base.hostname, port: this.base.port, path: `${prefix}/${bucket}/${encodedKey}` };
  }

  private send(headers: Record<string, string>, origin: string, path: string, body: Buffer): Promise<{ status: number; etag?: string; code?: string }> {
    const raw: string[] = [];
    for (const name in headers) raw.push(name, headers[name]!);
    return new Promise((resolve, reject) => {
      let status = 0;
      let etag: string | undefined;
      const text: Buffer[] = [];
      const handler: Parameters<Agent['dispatch']>[1] = {
        // (undici takes a handler with onRequestStart for its current interface, else for the one before)
        onRequestStart() {},
        onResponseStart(_, statusCode, responseHeaders) {
          status = statusCode;
          etag = responseHeaders.etag as string | undefined;
        },
        onResponseData(_, chunk) {
          // An error's XML names its code; a success has no body worth keeping.
          if (status >= 300) text.push(chunk);
        },
        onResponseEnd() {
          if (status < 300) resolve({ status, etag });
          else resolve({ status, code: /<Code>([^<]+)<\/Code>/.exec(Buffer.concat(text).toString('utf8'))?.[1] });
        },
        onResponseError(_, err) {
          reject(err);
        },
      };
      try {
        this.agent.dispatch({ origin, path, method: 'PUT', headers: raw, body: body.length > PIECE ? (pieces(body) as unknown as Readable) : body }, handler);
      } catch (err) {
        reject(err as Error);
      }
    });
  }
}

/**
 * A body given to undici whole is one write, and the request's timeout runs from there to S3's answer: on a slow
 * link a large body would time out while its bytes were still going. Given in pieces, the timeout starts again
 * with each piece the socket takes: it measures silence, as node:http's did. (undici takes any iterable body;
 * its typings name only streams.) A body of 1 MiB or less goes whole: it needs 9 KB/s to beat the default timeout,
 * and the pieces' writer cost the mixed bench drive's 1 MiB files 0.15 CPU-s (2.58 -> 2.48 s, 5 runs each).
 */
const PIECE = 1024 * 1024;

function* pieces(body: Buffer): Generator<Buffer> {
  for (let at = 0; at < body.length; at += PIECE) yield body.subarray(at, at + PIECE);
}

/** Retried as the SDK retries: server errors and throttling. */
function retryable(status: number, code?: string): boolean {
  return status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout' || code === 'RequestTimeTooSkewed';
}

/** A key of only the characters that stand for themselves in a path (RFC 3986 unreserved, and `/`). */
const PLAIN_KEY = /^[A-Za-z0-9\-._~/]*$/;
