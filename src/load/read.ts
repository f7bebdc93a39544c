import { constants, closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * A file of the device, open for reading. Small files are read with synchronous calls: for a file of a few KiB
 * the promise machinery of each asynchronous call costs several times the read itself, and a drive of small
 * files is bound by exactly that; a large file is read asynchronously, so that the event loop goes on sending.
 */
export interface Source {
  readonly size: number;
  readonly mtimeMs: number;
  /** reads up to `length` bytes at `position` into `buf`; returns how many were there (fewer: the file shrank) */
  readAt(buf: Buffer, length: number, position: number): Promise<number>;
  /** the file's size and modification time now */
  stat(): Promise<{ size: number; mtimeMs: number }>;
  close(): Promise<void>;
}

/** Files below this size are read synchronously. */
export const SYNC_READ_BYTES = 256 * 1024;

/** Opens a file without following a symbolic link put in its place (ELOOP). */
export async function openSource(abs: Buffer, expectedSize: number): Promise<Source> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  if (expectedSize < SYNC_READ_BYTES) {
    const fd = openSync(abs, flags);
    try {
      const st = fstatSync(fd);
      return {
        size: st.size,
        mtimeMs: st.mtimeMs,
        readAt: async (buf, length, position) => loop(length, (done) => readSync(fd, buf, done, length - done, position + done)),
        stat: async () => fstatSync(fd),
        close: async () => closeSync(fd),
      };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
  const fh = await open(abs, flags);
  try {
    const st = await fh.stat();
    return {
      size: st.size,
      mtimeMs: st.mtimeMs,
      readAt: async (buf, length, position) => {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(buf, done, length - done, position + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done;
      },
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

function loop(length: number, readMore: (done: number) => number): number {
  let done = 0;
  while (done < length) {
    const n = readMore(done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** The file has more bytes than `size`: it grew while it was read. */
export async function hasBytesAfter(src: Source, size: number): Promise<boolean> {
  return (await src.readAt(Buffer.alloc(1), 1, size)) > 0;
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
