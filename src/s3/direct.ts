import { hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Settings } from '../config.js';
import { S3Refused, S3Unreachable } from './errors.js';
import { Http1, type Origin } from './http1.js';
import { Signer, canonicalQuery, uriEncode, type Credentials } from './sigv4.js';
import { xmlValue } from './xml.js';

/** One S3 request as DirectS3 sends it. */
export interface S3Request {
  method: 'PUT' | 'POST' | 'GET' | 'HEAD' | 'DELETE';
  bucket: string;
  /** the object; absent: the bucket itself (a listing) */
  key?: string;
  /** a sub-resource without a value (`uploads`) has the value '' */
  query?: Record<string, string>;
  /** lower-case names */
  headers?: Record<string, string>;
  body?: Buffer;
  /** the body's MD5: sent as Content-MD5, and then the payload is not signed (S3 checks the MD5) */
  md5?: Buffer;
  /** what the request does, for messages: `PUT key`, `UploadPart key #3` */
  what: string;
}

/** What came back from a request S3 accepted: its ETag and length headers, and its XML (not kept for a PUT). */
export interface S3Answer {
  etag?: string;
  size?: number;
  xml?: string;
}

/**
 * S3 requests sent without the SDK's command pipeline: signed by `Signer` (sigv4.ts), sent on keep-alive
 * connections by `Http1` (http1.ts). For many small files the pipeline (serialize, endpoint rules, middleware,
 * deserialize) costs about four times the CPU of signing and sending, and decides how fast a drive of small files
 * goes (docs/benchmarks.md). Failures are classified as the SDK's are (`S3Refused` with S3's status and code,
 * `S3Unreachable` when no answer came), after the same number of tries. What each request means (its query, its
 * XML) is DirectObjects' (direct-objects.ts).
 */
export class DirectS3 {
  private readonly signer: Signer;
  private readonly http: Http1;
  private readonly base: URL;
  private readonly virtualHost: boolean;

  constructor(
    private readonly credentials: () => Promise<Credentials>,
    s3: S3Settings,
    private readonly maxAttempts: number,
    maxSockets: number,
  ) {
    this.signer = new Signer(s3.region);
    this.base = new URL(s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`);
    this.virtualHost = !s3.forcePathStyle;
    // A connection silent this long is dead (a pulled cable, a hung server): the request fails and is retried.
    // Idle connections are kept a few seconds for the next files.
    const timeout = s3.requestTimeoutMs;
    this.http = new Http1(timeout, maxSockets);
  }

  destroy(): void {
    this.http.destroy();
  }

  async request(req: S3Request): Promise<S3Answer> {
    const { hostname, port, path } = this.address(req.bucket, req.key);
    const host = port ? `${hostname}:${port}` : hostname;
    const tls = this.base.protocol === 'https:';
    const origin: Origin = { tls, host: hostname.replace(/^\[(.*)\]$/, '$1'), port: port ? Number(port) : tls ? 443 : 80, authority: host };
    const query = req.query ? canonicalQuery(req.query) : '';
    const body = req.body;
    // A body with Content-MD5 is checked by S3; any other (a Complete's list of parts) is small and signed.
    const payload = req.md5 ? 'UNSIGNED-PAYLOAD' : hash('sha256', body ?? '', 'hex');
    for (let attempt = 1; ; attempt++) {
      const signed: Record<string, string> = { ...req.headers, host, 'x-amz-content-sha256': payload };
      if (body) signed['content-length'] = String(body.length);
      if (req.md5) signed['content-md5'] = req.md5.toString('base64');
      this.signer.sign(req.method, path, query, signed, await this.credentials());
      let failure: S3Refused | S3Unreachable;
      try {
        const res = await this.send(req.method, signed, origin, query ? `${path}?${query}` : path, body);
        if (res.code === undefined) return res;
        const refused = new S3Refused(res.status, res.code, `${req.what}: ${res.status} ${res.code}`);
        if (!retryable(refused.status, refused.code)) throw refused;
        failure = refused;
      } catch (err) {
        if (err instanceof S3Refused) throw err;
        failure = new S3Unreachable(`${req.what}: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim(), { cause: err });
      }
      if (attempt >= this.maxAttempts) throw failure;
      // Full jitter, as the SDK's standard retry strategy: up to 100 ms × 2^attempt, at most 20 s.
      await sleep(Math.random() * Math.min(20_000, 100 * 2 ** attempt));
    }
  }

  private address(bucket: string, key: string | undefined): { hostname: string; port: string; path: string } {
    const object = key === undefined ? '' : PLAIN_KEY.test(key) ? key : key.split('/').map(uriEncode).join('/');
    const prefix = this.base.pathname.replace(/\/$/, '');
    // Virtual-hosted style where the bucket name is a valid host label (no dots under TLS), path style otherwise.
    if (this.virtualHost && !(bucket.includes('.') && this.base.protocol === 'https:')) {
      return { hostname: `${bucket}.${this.base.hostname}`, port: this.base.port, path: `${prefix}/${object}` };
    }
    return { hostname: this.base.hostname, port: this.base.port, path: `${prefix}/${bucket}/${object}` };
  }

  private async send(
    method: S3Request['method'],
    headers: Record<string, string>,
    origin: Origin,
    path: string,
    body: Buffer | undefined,
  ): Promise<S3Answer & { status: number; code?: string }> {
    // An answer S3 refused has a `code`: S3's, or `NotFound` for a HEAD's bare 404, or `Http<status>`.
    const answer = await this.http.request(origin, method, path, headers, body);
    const status = answer.status;
    const etag = answer.headers.get('etag');
    const length = answer.headers.get('content-length');
    const size = method === 'HEAD' && length !== undefined ? Number(length) : undefined;
    // A PUT's answer has nothing to read but its ETag; an error's XML names its code.
    const keep = method !== 'PUT' || status >= 300;
    if (!keep || answer.body.length === 0) {
      const code = status < 300 ? undefined : method === 'HEAD' && status === 404 ? 'NotFound' : `Http${status}`;
      return { status, etag, size, ...(code && { code }) };
    }
    const xml = answer.body.toString('utf8');
    // CompleteMultipartUpload can fail after its 200 went out: the error is then the answer's body. AWS says
    // to retry it, as a server error.
    const failed = status >= 300 || xml.includes('<Error>');
    return { status: status < 300 && failed ? 500 : status, etag, size, xml, ...(failed && { code: xmlValue(xml, 'Code') ?? `Http${status}` }) };
  }
}

/** Retried as the SDK retries: server errors and throttling. */
function retryable(status: number, code?: string): boolean {
  return status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout' || code === 'RequestTimeTooSkewed';
}

/** A key of only the characters that stand for themselves in a path (RFC 3986 unreserved, and `/`). */
const PLAIN_KEY = /^[A-Za-z0-9\-._~/]*$/;
