import { readFileSync } from 'node:fs';
import { unreadableFile } from '../errors.js';
import { parseManifest } from '../manifest/parse.js';
import type { Manifest } from '../manifest/types.js';

export function readInputFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A manifest file: its exact bytes (kept for the SIGNATURE) and the validated manifest. */
export function readManifest(path: string): { bytes: Buffer; manifest: Manifest } {
  const bytes = readInputFile(path);
  return { bytes, manifest: parseManifest(bytes) };
}
