import { createHmac, hash } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/**
 * AWS Signature Version 4 for the requests DirectS3 sends: headers signed, the payload's hash given in
 * `x-amz-content-sha256` (`UNSIGNED-PAYLOAD` for a body with Content-MD5), with a query string or none. It signs
 * what the SDK's SignatureV4 signs for those requests, byte for byte (a unit test compares the two on random
 * requests; radosgw checks every signature in the load tests). Why not the SDK's: it is written for every shape
 * (presigning, event streams) and on a drive of small files cost the S3 thread about 16 KiB of garbage per request
 * and V8 a fifth of a second compiling it (docs/benchmarks.md).
 */
export class Signer {
  private key: { scope: string; secret: string; value: Buffer } | undefined;
  private clock: { second: number; longDate: string } = { second: -1, longDate: '' };

  constructor(private readonly region: string) {}

  /**
   * Adds `x-amz-date`, `x-amz-security-token` (temporary credentials) and `authorization` to `headers`, whose
   * names must be lower case; signs every header but those SigV4 leaves out. `path` is signed as sent, and so is
   * `query`, which must be canonical (`canonicalQuery`).
   */
  sign(method: string, path: string, query: string, headers: Record<string, string>, credentials: Credentials, now = Date.now()): void {
    const longDate = this.longDate(now);
    const scope = `${longDate.slice(0, 8)}/${this.region}/s3/aws4_request`;
    headers['x-amz-date'] = longDate;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers)
      .filter((name) => !UNSIGNED.has(name) && !name.startsWith('proxy-') && !name.startsWith('sec-'))
      .sort();
    let canonical = `${method}\n${path}\n${query}\n`;
    for (const name of names) canonical += `${name}:${canonicalValue(headers[name]!)}\n`;
    const signed = names.join(';');
    canonical += `\n${signed}\n${headers['x-amz-content-sha256']}`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${hash('sha256', canonical, 'hex')}`;
    const signature = createHmac('sha256', this.signingKey(scope, credentials.secretAccessKey)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`;
  }

  /** `YYYYMMDDTHHMMSSZ`, made once a second. */
  private longDate(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.clock.second) {
      this.clock = { second, longDate: new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '') };
    }
    return this.clock.longDate;
  }

  /** The key of a day, region and secret: four HMACs, made again only when one of them changes. */
  private signingKey(scope: string, secret: string): Buffer {
    if (this.key?.scope !== scope || this.key.secret !== secret) {
      let value: Buffer | string = `AWS4${secret}`;
      for (const part of scope.split('/')) value = createHmac('sha256', value).update(part).digest();
      this.key = { scope, secret, value: value as Buffer };
    }
    return this.key.value;
  }
}

/** A query string as SigV4 signs it (and as it may be sent): names in order, names and values percent-encoded. */
export function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .sort()
    .map((name) => `${uriEncode(name)}=${uriEncode(params[name]!)}`)
    .join('&');
}

/** Percent-encoding as S3 signs it: RFC 3986's unreserved characters stay as they are. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Headers SigV4 (the SDK's ALWAYS_UNSIGNABLE_HEADERS) leaves out of a signature: a proxy may change them. */
const UNSIGNED = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

/** A header value as signed: line breaks as spaces, runs of spaces and tabs as one, no space at either end. */
function canonicalValue(value: string): string {
  return /[\r\n\t]| {2}|^ | $/.test(value) ? value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : value;
}
