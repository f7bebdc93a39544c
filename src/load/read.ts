import type { FileHandle } from 'node:fs/promises';

/** Reads up to `length` bytes at `position` into `buf`; returns how many were there (fewer: the file shrank). */
export async function readAt(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** The file has more bytes than `size`: it grew while it was read. */
export async function hasBytesAfter(fh: FileHandle, size: number): Promise<boolean> {
  const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, size);
  return bytesRead > 0;
}

/** An error from reading a file, kept apart from S3's so the row says DeviceReadError. */
export class DeviceReadError extends Error {
  constructor(
    readonly path: string,
    readonly errno: NodeJS.ErrnoException,
  ) {
    super(`cannot read ${path}: ${errno.code ?? ''} ${errno.message}`.trim());
    this.name = 'DeviceReadError';
  }
}

/** The file changed (size, modification time, or content) while it was read. */
export class FileChangedError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`${path} changed while it was read: ${reason}`);
    this.name = 'FileChangedError';
  }
}
