/**
 * The S3 calls a load makes, as one interface with two ways to make them: `SdkObjects` (the AWS SDK's commands)
 * and `DirectObjects` (signed and sent by the station's own thread, much less CPU per request). The station picks
 * one (`s3.directPut`); both fail only as `S3Refused` (an answer: status and S3's code) or `S3Unreachable` (no
 * answer), after the same number of tries, and the load tests run both against radosgw.
 */
export interface S3Objects {
  /** A single PUT; returns the ETag (as all ETags here: lower-case hex, no quotes). */
  put(bucket: string, key: string, body: Buffer, md5: Buffer, headers: ObjectHeaders): Promise<string>;
  /** Starts a multipart upload; returns its UploadId. */
  create(bucket: string, key: string, headers: ObjectHeaders): Promise<string>;
  part(bucket: string, key: string, uploadId: string, partNumber: number, body: Buffer, md5: Buffer): Promise<string>;
  /** Returns the ETag of the answer, which some servers (radosgw) leave empty. */
  complete(bucket: string, key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<string>;
  head(bucket: string, key: string): Promise<{ etag: string; size: number }>;
  abort(bucket: string, key: string, uploadId: string): Promise<void>;
  /** One page of the multipart uploads open under a prefix; `next` is where the next page starts. */
  listUploads(bucket: string, prefix: string, from?: UploadMarker): Promise<{ uploads: OpenUpload[]; next?: UploadMarker }>;
  /** One page of the parts S3 holds for an upload. */
  listParts(bucket: string, key: string, uploadId: string, from?: number): Promise<{ parts: StoredPart[]; next?: number }>;
  /** Lets go of connections and threads. */
  destroy(): Promise<void>;
}

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

export interface OpenUpload {
  key: string;
  uploadId: string;
  /** when S3 says it began */
  initiated: Date;
}

export interface UploadMarker {
  key: string;
  uploadId: string;
}

export interface StoredPart {
  partNumber: number;
  etag: string;
  size: number;
}

export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '').toLowerCase();
}
