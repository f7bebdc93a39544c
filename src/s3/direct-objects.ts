import { normalizeEtag, type ObjectHeaders, type S3Objects, type UploadMarker } from './api.js';
import type { S3Answer, S3Request } from './direct.js';
import { escapeXml, xmlBlocks, xmlValue } from './xml.js';

/**
 * The S3 calls of a load as REST requests (S3's API reference: query, headers, XML), made by DirectS3 in the
 * station's S3 thread (`s3.directPut`, the default). Each answer's XML is read here, on the main thread: the
 * thread only signs, sends and retries.
 */
export class DirectObjects implements S3Objects {
  constructor(
    private readonly send: (req: S3Request) => Promise<S3Answer>,
    private readonly close: () => Promise<void>,
  ) {}

  async put(bucket: string, key: string, body: Buffer, md5: Buffer, headers: ObjectHeaders): Promise<string> {
    return normalizeEtag((await this.send({ method: 'PUT', bucket, key, headers: httpHeaders(headers), body, md5, what: `PUT ${key}` })).etag);
  }

  async create(bucket: string, key: string, headers: ObjectHeaders): Promise<string> {
    const what = `CreateMultipartUpload ${key}`;
    const out = await this.send({ method: 'POST', bucket, key, query: { uploads: '' }, headers: httpHeaders(headers), what });
    const uploadId = xmlValue(out.xml ?? '', 'UploadId');
    if (!uploadId) throw new Error(`${what}: no UploadId in the answer`);
    return uploadId;
  }

  async part(bucket: string, key: string, uploadId: string, partNumber: number, body: Buffer, md5: Buffer): Promise<string> {
    const query = { partNumber: String(partNumber), uploadId };
    return normalizeEtag((await this.send({ method: 'PUT', bucket, key, query, body, md5, what: `UploadPart ${key} #${partNumber}` })).etag);
  }

  async complete(bucket: string, key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<string> {
    const list = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>"${escapeXml(p.etag)}"</ETag></Part>`).join('');
    const body = Buffer.from(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${list}</CompleteMultipartUpload>`);
    const out = await this.send({ method: 'POST', bucket, key, query: { uploadId }, headers: { 'content-type': 'application/xml' }, body, what: `CompleteMultipartUpload ${key}` });
    return normalizeEtag(xmlValue(out.xml ?? '', 'ETag'));
  }

  async head(bucket: string, key: string): Promise<{ etag: string; size: number }> {
    const out = await this.send({ method: 'HEAD', bucket, key, what: `HEAD ${key}` });
    return { etag: normalizeEtag(out.etag), size: out.size ?? -1 };
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.send({ method: 'DELETE', bucket, key, query: { uploadId }, what: `AbortMultipartUpload ${key}` });
  }

  async listUploads(bucket: string, prefix: string, from?: UploadMarker) {
    const query: Record<string, string> = { uploads: '', prefix, ...(from && { 'key-marker': from.key, 'upload-id-marker': from.uploadId }) };
    const xml = (await this.send({ method: 'GET', bucket, query, what: `ListMultipartUploads ${bucket}/${prefix}` })).xml ?? '';
    const uploads = xmlBlocks(xml, 'Upload').flatMap((u) => {
      const [key, uploadId, initiated] = [xmlValue(u, 'Key'), xmlValue(u, 'UploadId'), xmlValue(u, 'Initiated')];
      return key !== undefined && uploadId !== undefined ? [{ key, uploadId, initiated: new Date(initiated ?? 0) }] : [];
    });
    const nextKey = xmlValue(xml, 'NextKeyMarker');
    const next = xmlValue(xml, 'IsTruncated') === 'true' && nextKey ? { key: nextKey, uploadId: xmlValue(xml, 'NextUploadIdMarker') ?? '' } : undefined;
    return { uploads, ...(next && { next }) };
  }

  async listParts(bucket: string, key: string, uploadId: string, from?: number) {
    const query = { uploadId, ...(from !== undefined && { 'part-number-marker': String(from) }) };
    const xml = (await this.send({ method: 'GET', bucket, key, query, what: `ListParts ${key}` })).xml ?? '';
    const parts = xmlBlocks(xml, 'Part').map((p) => ({
      partNumber: Number(xmlValue(p, 'PartNumber')),
      etag: normalizeEtag(xmlValue(p, 'ETag')),
      size: Number(xmlValue(p, 'Size') ?? -1),
    }));
    const marker = Number(xmlValue(xml, 'NextPartNumberMarker'));
    return { parts, ...(xmlValue(xml, 'IsTruncated') === 'true' && marker > 0 && { next: marker }) };
  }

  destroy(): Promise<void> {
    return this.close();
  }
}

/** The object headers as S3's REST API names them. */
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
