import type { LimitFunction } from 'p-limit';
import type { ObjectHeaders, OpenUpload, S3Objects, StoredPart, UploadMarker } from '../s3/api.js';
import { S3Refused } from '../s3/errors.js';

export type { ObjectHeaders } from '../s3/api.js';

/**
 * A load's calls to S3 about the objects of one bucket. Every request goes through the station's request limit
 * and carries its body's Content-MD5; it fails as `S3Refused` or `S3Unreachable` once its tries are spent
 * (src/s3/api.ts). Here too: what counts as done (an upload S3 no longer knows), and listings page by page.
 */
export class ObjectWriter {
  constructor(
    private readonly s3: S3Objects,
    readonly bucket: string,
    private readonly limit: LimitFunction,
    /** told how long each call took, for the metrics (src/metrics.ts) */
    private readonly onRequest?: (operation: string, seconds: number, ok: boolean) => void,
  ) {}

  /** Makes one call in a request slot, and times it from inside: the wait for a slot is the limit's, not S3's. */
  private send<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const observe = this.onRequest;
    if (!observe) return this.limit(fn);
    return this.limit(async () => {
      const t0 = performance.now();
      try {
        const out = await fn();
        observe(operation, (performance.now() - t0) / 1000, true);
        return out;
      } catch (err) {
        observe(operation, (performance.now() - t0) / 1000, false);
        throw err;
      }
    });
  }

  /** A single PUT; returns the ETag (lower-case hex, no quotes). */
  put(key: string, body: Buffer, md5: Buffer, headers: ObjectHeaders): Promise<string> {
    return this.send('PutObject', () => this.s3.put(this.bucket, key, body, md5, headers));
  }

  create(key: string, headers: ObjectHeaders): Promise<string> {
    return this.send('CreateMultipartUpload', () => this.s3.create(this.bucket, key, headers));
  }

  part(key: string, uploadId: string, partNumber: number, body: Buffer, md5: Buffer): Promise<string> {
    return this.send('UploadPart', () => this.s3.part(this.bucket, key, uploadId, partNumber, body, md5));
  }

  /** Completes an upload; returns the ETag of the answer, which some servers (radosgw) leave empty. */
  complete(key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<string> {
    return this.send('CompleteMultipartUpload', () => this.s3.complete(this.bucket, key, uploadId, parts));
  }

  head(key: string): Promise<{ etag: string; size: number }> {
    return this.send('HeadObject', () => this.s3.head(this.bucket, key));
  }

  /** Aborts an upload. One S3 no longer knows (aborted or completed before, perhaps by a try whose answer was lost) is done. */
  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.send('AbortMultipartUpload', () => this.s3.abort(this.bucket, key, uploadId));
    } catch (err) {
      if (!(err instanceof S3Refused && err.status === 404)) throw err;
    }
  }

  /** The multipart uploads open under a prefix, with when S3 says each began. */
  async listUploads(prefix: string): Promise<OpenUpload[]> {
    const uploads: OpenUpload[] = [];
    let from: UploadMarker | undefined;
    do {
      const page = await this.send('ListMultipartUploads', () => this.s3.listUploads(this.bucket, prefix, from));
      uploads.push(...page.uploads);
      from = page.next;
    } while (from);
    return uploads;
  }

  /** The parts S3 holds for an upload, or undefined when it no longer knows the upload. */
  async listParts(key: string, uploadId: string): Promise<Map<number, StoredPart> | undefined> {
    const parts = new Map<number, StoredPart>();
    let from: number | undefined;
    try {
      do {
        const page = await this.send('ListParts', () => this.s3.listParts(this.bucket, key, uploadId, from));
        for (const p of page.parts) parts.set(p.partNumber, p);
        from = page.next;
      } while (from !== undefined);
    } catch (err) {
      // AWS answers NoSuchUpload; radosgw answers 404 NoSuchKey.
      if (err instanceof S3Refused && err.status === 404) return undefined;
      throw err;
    }
    return parts;
  }
}
