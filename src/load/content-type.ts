import { lookup } from 'mime-types';
import type { Manifest } from '../manifest/types.js';

export interface ContentHeaders {
  contentType: string;
  contentEncoding?: 'gzip';
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Content-Type (and Content-Encoding) of a file (contract §2): the manifest's own table by extension
 * (case-sensitive), then the built-in table, then the default. With `setContentEncodingForGzFiles`, a file
 * that starts with gzip's magic is `Content-Encoding: gzip`, and a trailing `.gz`/`.gzip` is dropped first.
 */
export function contentHeadersFor(manifest: Manifest, path: string, firstBytes: Buffer): ContentHeaders {
  let name = path.slice(path.lastIndexOf('/') + 1);
  const gzip = manifest.setContentEncodingForGzFiles && firstBytes[0] === GZIP_MAGIC[0] && firstBytes[1] === GZIP_MAGIC[1];
  if (gzip) name = name.replace(/\.(gz|gzip)$/i, '');
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  const contentType = (ext && manifest.contentTypes.get(ext)) || (ext && lookup(ext)) || manifest.defaultContentType;
  return gzip ? { contentType, contentEncoding: 'gzip' } : { contentType };
}
