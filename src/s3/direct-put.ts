import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Settings } from '../config.js';
import { S3Refused, S3Unreachable } from './errors.js';
import { PutSigner, type Credentials } from './sigv4.js';

/**
 * Single PUTs sent without the SDK's command pipeline: signed by PutSigner (sigv4.ts), sent on node:http.
 * For many small files the pipeline (serialize, endpoint rules, middleware, deserialize) costs about four times
 * the CPU of signing and sending, and decides how fast a drive of small files goes (docs/benchmarks.md). Every
 * body carries its Content-MD5 and an unsigned payload, as through the SDK; failures are classified the same way
 * (`S3Refused` with S3's status and code, `S3Unreachable` when no answer came), after the same number of tries.
 */
export class DirectPut {
  private readonly signer: PutSigner;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly base: URL;
  private readonly virtualHost: boolean;

  constructor(
    private readonly credentials: () => Promise<Credentials>,
    private readonly s3: S3Settings,
    private readonly maxAttempts: number,
    maxSockets: number,
  ) {
    this.signer = new PutSigner(s3.region);
    this.base = new URL(s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`);
    this.virtualHost = !s3.forcePathStyle;
    // The idle timeout is set once per socket by the agent, not per request: on a drive of small files, setting
    // it on every request was a few per cent of the main thread.
    const agent = { keepAlive: true, maxSockets, keepAliveMsecs: 10_000, timeout: s3.requestTimeoutMs };
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent(agent) : new HttpAgent(agent);
  }

  destroy(): void {
    this.agent.destroy();
  }

  /** PUTs one object; returns its ETag (lower-case hex, no quotes). */
  async put(bucket: string, key: string, body: Buffer, md5: Buffer, headers: Record<string, string>): Promise<string> {
    const { hostname, port, path } = this.address(bucket, key);
    const host = port ? `${hostname}:${port}` : hostname;
    for (let attempt = 1; ; attempt++) {
      const signed: Record<string, string> = {
        ...headers,
        host,
        'content-length': String(body.length),
        'content-md5': md5.toString('base64'),
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      };
      this.signer.sign('PUT', path, signed, await this.credentials());
      let failure: S3Refused | S3Unreachable;
      try {
        const res = await this.send(signed, hostname, port, path, body);
        if (res.status < 300) return (res.etag ?? '').replace(/^"|"$/g, '').toLowerCase();
        failure = new S3Refused(res.status, res.code ?? `Http${res.status}`, `PUT ${key}: ${res.status} ${res.code ?? ''}`.trim());
        if (!retryable(res.status, res.code)) throw failure;
      } catch (err) {
        if (err instanceof S3Refused && !retryable(err.status, err.code)) throw err;
        failure = err instanceof S3Refused ? err : new S3Unreachable(`PUT ${key}: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim(), { cause: err });
      }
      if (attempt >= this.maxAttempts) throw failure;
      // Full jitter, as the SDK's standard retry strategy: up to 100 ms × 2^attempt, at most 20 s.
      await sleep(Math.random() * Math.min(20_000, 100 * 2 ** attempt));
    }
  }

  private address(bucket: string, key: string): { hostname: string; port: string; path: string } {
    const encodedKey = PLAIN_KEY.test(key) ? key : key.split('/').map(encodeSegment).join('/');
    const prefix = this.base.pathname.replace(/\/$/, '');
    // Virtual-hosted style where the bucket name is a valid host label (no dots under TLS), path style otherwise.
    if (this.virtualHost && !(bucket.includes('.') && this.base.protocol === 'https:')) {
      return { hostname: `${bucket}.${this.base.hostname}`, port: this.base.port, path: `${prefix}/${encodedKey}` };
    }
    return { hostname: this.base.hostname, port: this.base.port, path: `${prefix}/${bucket}/${encodedKey}` };
  }

  private send(
    headers: Record<string, string>,
    hostname: string,
    port: string,
    path: string,
    body: Buffer,
  ): Promise<{ status: number; etag?: string; code?: string }> {
    const request = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    // Headers as a list go to the request line as they are; as an object, node:http files each one in a map first.
    const raw: string[] = [];
    for (const name in headers) raw.push(name, headers[name]!);
    return new Promise((resolve, reject) => {
      const req = request(
        { method: 'PUT', hostname, ...(port && { port: Number(port) }), path, headers: raw, agent: this.agent },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          if (status < 300) {
            res.resume();
            res.on('end', () => resolve({ status, etag: res.headers.etag }));
            res.on('error', reject);
            return;
          }
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] }));
          res.on('error', reject);
        },
      );
      // A socket silent this long is dead (a pulled cable, a hung server): the request fails and is retried.
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** Retried as the SDK retries: server errors and throttling. */
function retryable(status: number, code?: string): boolean {
  return status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout' || code === 'RequestTimeTooSkewed';
}

/** A key of only the characters that stand for themselves in a path (RFC 3986 unreserved, and `/`). */
const PLAIN_KEY = /^[A-Za-z0-9\-._~/]*$/;

/** One key segment, percent-encoded as S3 signs it (RFC 3986 unreserved characters left as they are). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
