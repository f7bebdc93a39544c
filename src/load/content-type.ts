import { readFileSync } from 'node:fs';
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
  const contentType = (ext && manifest.contentTypes.get(ext)) || (ext && builtInType(ext)) || manifest.defaultContentType;
  return gzip ? { contentType, contentEncoding: 'gzip' } : { contentType };
}

let types: Record<string, string> | undefined;

/**
 * The built-in table: mime-types' own extension → type table, written next to this module by the build
 * (scripts/bundle.mjs). Loaded as mime-types it took ~15 ms of every load's start (mime-db's JSON, then its
 * scoring of extensions that several types claim); its result, read as JSON, takes under one. Looked up as
 * mime-types' `lookup` looks up an extension: lower-cased.
 */
export function builtInType(ext: string): string | undefined {
  types ??= JSON.parse(readFileSync(new URL('./mime-types.json', import.meta.url), 'utf8')) as Record<string, string>;
  return types[ext.toLowerCase()];
}
