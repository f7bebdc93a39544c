import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { LimitFunction } from 'p-limit';
import type { PutThread } from '../s3/put-thread.js';
import { S3Refused, classifyS3Error } from '../s3/errors.js';

/** Headers every object of a job gets, from the manifest, plus its content headers. */
export interface ObjectHeaders {
  ContentType: string;
  ContentEncoding?: string;
  ACL?: 'private' | 'public-read' | 'public-read-write' | 'authenticated-read';
  CacheControl?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  Expires?: Date;
  StorageClass?: string;
  Metadata?: Record<string, string>;
}

/**
 * The only code that speaks to S3 about objects: single PUTs and the multipart commands. Every request goes
 * through the station's request limit, carries its body's Content-MD5, and fails as `S3Refused` or
 * `S3Unreachable` once the SDK's retries (5xx, SlowDown, timeouts, dropped connections) are spent.
 *
 * Multipart uploads use the client-s3 commands directly, not lib-storage's `Upload`: a load must be able to
 * continue an existing UploadId after a restart, check each part's ETag, and hold part buffers under one budget
 * for the whole station; `Upload` does none of these.
 */
export class ObjectWriter {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    private readonly limit: LimitFunction,
    private readonly direct?: PutThread,
    /** told how long each call took, for the metrics (src/metrics.ts) */
    private readonly onRequest?: (operation: string, seconds: number, ok: boolean) => void,
  ) {}

  private async send<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.limit(() => this.timed(what, fn));
    } catch (err) {
      throw classifyS3Error(err, what);
    }
  }

  /** Times one call from inside its request slot: the wait for a slot is the limit's, not S3's. */
  private async timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const observe = this.onRequest;
    if (!observe) return fn();
    const verb = what.split(' ', 1)[0]!;
    const operation = OPERATIONS[verb] ?? verb;
    const t0 = performance.now();
    try {
      const out = await fn();
      observe(operation, (performance.now() - t0) / 1000, true);
      return out;
    } catch (err) {
      observe(operation, (performance.now() - t0) / 1000, false);
      throw err;
    }
  }

  /** A single PUT; returns the ETag (lower-case hex, no quotes). */
  async put(key: string, body: Buffer, md5: Buffer, headers: ObjectHeaders): Promise<string> {
    const direct = this.direct;
    if (direct) return this.limit(() => this.timed(`PUT ${key}`, () => direct.put(this.bucket, key, body, md5, httpHeaders(headers))));
    const out = await this.send(`PUT ${key}`, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: md5.toString('base64'), ...headers } as never),
      ),
    );
    return normalizeEtag(out.ETag);
  }

  async create(key: string, headers: ObjectHeaders): Promise<string> {
    const out = await this.send(`CreateMultipartUpload ${key}`, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ...headers } as never)),
    );
    if (!out.UploadId) throw new Error(`CreateMultipartUpload ${key}: no UploadId in the answer`);
    return out.UploadId;
  }

  async part(key: string, uploadId: string, partNumber: number, body: Buffer, md5: Buffer): Promise<string> {
    const what = `UploadPart ${key} #${partNumber}`;
    const direct = this.direct;
    if (direct) return this.limit(() => this.timed(what, () => direct.put(this.bucket, key, body, md5, {}, { number: partNumber, uploadId })));
    const out = await this.send(what, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
          ContentMD5: md5.toString('base64'),
        }),
      ),
    );
    return normalizeEtag(out.ETag);
  }

  /** Completes an upload; returns the ETag of the answer, which some servers (radosgw) leave empty. */
  async complete(key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<string> {
    const out = await this.send(`CompleteMultipartUpload ${key}`, () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
        }),
      ),
    );
    return normalizeEtag(out.ETag);
  }

  async head(key: string): Promise<{ etag: string; size: number }> {
    const out = await this.send(`HEAD ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
    return { etag: normalizeEtag(out.ETag), size: out.ContentLength ?? -1 };
  }

  /** Aborts an upload. One S3 no longer knows (aborted or completed before, perhaps by a try whose answer was lost) is done. */
  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.send(`AbortMultipartUpload ${key}`, () =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })),
      );
    } catch (err) {
      if (!(err instanceof S3Refused && err.status === 404)) throw err;
    }
  }

  /** The multipart uploads open under a prefix, with when S3 says each began. */
  async listUploads(prefix: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    const uploads: Array<{ key: string; uploadId: string; initiated: Date }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const out = await this.send(`ListMultipartUploads ${this.bucket}/${prefix}`, () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
      );
      for (const u of out.Uploads ?? []) {
        if (u.Key !== undefined && u.UploadId !== undefined) uploads.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      [keyMarker, uploadIdMarker] = out.IsTruncated ? [out.NextKeyMarker, out.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker !== undefined);
    return uploads;
  }

  /** The parts S3 holds for an upload, or undefined when it no longer knows the upload. */
  async listParts(key: string, uploadId: string): Promise<Map<number, { etag: string; size: number }> | undefined> {
    const parts = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    try {
      do {
        const out = await this.send(`ListParts ${key}`, () =>
          this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker })),
        );
        for (const p of out.Parts ?? []) parts.set(p.PartNumber!, { etag: normalizeEtag(p.ETag), size: p.Size ?? -1 });
        marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (err) {
      // AWS answers NoSuchUpload; radosgw answers 404 NoSuchKey.
      if ((err as { status?: number }).status === 404) return undefined;
      throw err;
    }
    return parts;
  }
}

/** The S3 API's names for the first word of a call's description (`PUT key`, `HEAD key`, `UploadPart key #3`). */
const OPERATIONS: Record<string, string> = { PUT: 'PutObject', HEAD: 'HeadObject' };

/** The object headers as S3's REST API names them, for a PUT sent without the SDK. */
function httpHeaders(h: ObjectHeaders): Record<string, string> {
  const out: Record<string, string> = { 'content-type': h.ContentType };
  if (h.ContentEncoding) out['content-encoding'] = h.ContentEncoding;
  if (h.ACL) out['x-amz-acl'] = h.ACL;
  if (h.CacheControl) out['cache-control'] = h.CacheControl;
  if (h.ContentDisposition) out['content-disposition'] = h.ContentDisposition;
  if (h.ContentLanguage) out['content-language'] = h.ContentLanguage;
  if (h.Expires) out.expires = h.Expires.toUTCString();
  if (h.StorageClass) out['x-amz-storage-class'] = h.StorageClass;
  for (const [name, value] of Object.entries(h.Metadata ?? {})) out[`x-amz-meta-${name.toLowerCase()}`] = value;
  return out;
}

export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '').toLowerCase();
}
