import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { StationError, unreadableFile } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, tooLarge } from '../manifest/parse.js';
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

/**
 * A manifest file: its exact bytes (kept for the SIGNATURE) and the validated manifest. At most 1 MiB is read: a
 * larger file (or /dev/zero, or a pipe that never ends) is refused without being held in memory.
 */
export function readManifest(path: string): { bytes: Buffer; manifest: Manifest } {
  const bytes = readBounded(path, MAX_MANIFEST_BYTES);
  return { bytes, manifest: parseManifest(bytes) };
}

function readBounded(path: string, max: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw unreadableFile(path, err);
  }
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let got; n < buf.length && (got = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += got;
    if (n > max) throw tooLarge(`over ${max}`);
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof StationError) throw err;
    throw unreadableFile(path, err);
  } finally {
    closeSync(fd);
  }
}
