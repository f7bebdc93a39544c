import type { ListMultipartUploadsCommandOutput, ListPartsCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { normalizeEtag, type ObjectHeaders, type S3Objects } from './api.js';
import { classifyS3Error } from './errors.js';

/**
 * The S3 calls of a load made with the AWS SDK's commands (`s3.directPut: false`), with the SDK's retries.
 *
 * Multipart uploads use the client-s3 commands directly, not lib-storage's `Upload`: a load must be able to
 * continue an existing UploadId after a restart, check each part's ETag, and hold part buffers under one budget
 * for the whole station; `Upload` does none of these.
 */
export class SdkObjects implements S3Objects {
  constructor(
    /** the client, made when first asked for: the SDK takes some 40 ms to load and more for its first request */
    private readonly client: () => Promise<S3Client>,
    private readonly close: () => Promise<void>,
  ) {}

  /** Sends one command; its failure classified here, where the SDK's error shape is known. */
  private async send<T>(what: string, command: (sdk: Sdk) => object): Promise<T> {
    const [client, sdk] = await Promise.all([this.client(), import('@aws-sdk/client-s3')]);
    try {
      return (await client.send(command(sdk) as never)) as T;
    } catch (err) {
      throw classifyS3Error(err, what);
    }
  }

  async put(bucket: string, key: string, body: Buffer, md5: Buffer, headers: ObjectHeaders): Promise<string> {
    const input = { Bucket: bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: md5.toString('base64'), ...headers };
    const out = await this.send<{ ETag?: string }>(`PUT ${key}`, (sdk) => new sdk.PutObjectCommand(input as never));
    return normalizeEtag(out.ETag);
  }

  async create(bucket: string, key: string, headers: ObjectHeaders): Promise<string> {
    const what = `CreateMultipartUpload ${key}`;
    const out = await this.send<{ UploadId?: string }>(what, (sdk) => new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...headers } as never));
    if (!out.UploadId) throw new Error(`${what}: no UploadId in the answer`);
    return out.UploadId;
  }

  async part(bucket: string, key: string, uploadId: string, partNumber: number, body: Buffer, md5: Buffer): Promise<string> {
    const input = { Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ContentMD5: md5.toString('base64') };
    const out = await this.send<{ ETag?: string }>(`UploadPart ${key} #${partNumber}`, (sdk) => new sdk.UploadPartCommand(input));
    return normalizeEtag(out.ETag);
  }

  async complete(bucket: string, key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<string> {
    const MultipartUpload = { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) };
    const command = (sdk: Sdk) => new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload });
    return normalizeEtag((await this.send<{ ETag?: string }>(`CompleteMultipartUpload ${key}`, command)).ETag);
  }

  async head(bucket: string, key: string): Promise<{ etag: string; size: number }> {
    const out = await this.send<{ ETag?: string; ContentLength?: number }>(`HEAD ${key}`, (sdk) => new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { etag: normalizeEtag(out.ETag), size: out.ContentLength ?? -1 };
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.send(`AbortMultipartUpload ${key}`, (sdk) => new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  }

  async listUploads(bucket: string, prefix: string, from?: { key: string; uploadId: string }) {
    const command = (sdk: Sdk) => new sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: from?.key, UploadIdMarker: from?.uploadId });
    const out = await this.send<ListMultipartUploadsCommandOutput>(`ListMultipartUploads ${bucket}/${prefix}`, command);
    const uploads = (out.Uploads ?? []).flatMap((u) =>
      u.Key !== undefined && u.UploadId !== undefined ? [{ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) }] : [],
    );
    const next = out.IsTruncated && out.NextKeyMarker !== undefined ? { key: out.NextKeyMarker, uploadId: out.NextUploadIdMarker ?? '' } : undefined;
    return { uploads, ...(next && { next }) };
  }

  async listParts(bucket: string, key: string, uploadId: string, from?: number) {
    const command = (sdk: Sdk) => new sdk.ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: from === undefined ? undefined : String(from) });
    const out = await this.send<ListPartsCommandOutput>(`ListParts ${key}`, command);
    const parts = (out.Parts ?? []).map((p) => ({ partNumber: p.PartNumber!, etag: normalizeEtag(p.ETag), size: p.Size ?? -1 }));
    const next = out.IsTruncated && out.NextPartNumberMarker ? Number(out.NextPartNumberMarker) : undefined;
    return { parts, ...(next !== undefined && { next }) };
  }

  destroy(): Promise<void> {
    return this.close();
  }
}

type Sdk = typeof import('@aws-sdk/client-s3');
