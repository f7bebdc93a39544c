import { lstatSync, readdirSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/**
 * The walk of a device (contract §4): depth-first, names in byte order, symbolic links never followed. Names are
 * kept as bytes: a name that is not UTF-8 must still be walked (and logged), and byte order is the stable order.
 * Memory grows with the depth and the width of one directory, not with the size of the device.
 */

export type EntryKind = 'file' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'char-device' | 'unreadable-dir' | 'path-too-long';

export interface Entry {
  /** path relative to the device root, `/` separators, as bytes */
  path: Buffer;
  /** the path as text, or undefined when some name on it is not valid UTF-8 */
  text: string | undefined;
  kind: EntryKind;
  size: number;
  mtimeMs: number;
  /** under a directory that an `ignore` pattern matched */
  inIgnoredDir: boolean;
  /** for `unreadable-dir` and `path-too-long`: why */
  error?: NodeJS.ErrnoException;
}

export interface WalkOptions {
  /** true for a directory path (relative, with its trailing `/`) whose whole subtree is ignored */
  ignoresDir?: (dirText: string) => boolean;
  /**
   * Look with synchronous calls: a fifth of the CPU of the asynchronous ones, for a walk that runs on a thread of
   * its own (the count) or over metadata the count has just brought into the cache (the upload pass).
   */
  sync?: boolean;
}

const SLASH = Buffer.from('/');
const LSTAT_AHEAD = 32;
// ignoreBOM: a name that begins with U+FEFF keeps it. By default a decoder drops a leading BOM, and the key
// would then differ from the name on the drive (and collide with the name without it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeName(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<Entry> {
  yield* walkDir(Buffer.from(root), Buffer.alloc(0), '', false, options);
}

async function* walkDir(root: Buffer, rel: Buffer, relText: string | undefined, ignored: boolean, options: WalkOptions): AsyncGenerator<Entry> {
  const abs = rel.length === 0 ? root : Buffer.concat([root, SLASH, rel]);
  let names: Buffer[];
  try {
    names = (options.sync ? readdirSync(abs, { encoding: 'buffer' }) : await readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare);
  } catch (err) {
    if (rel.length === 0) throw err; // the device root itself: the caller decides
    yield { path: rel, text: relText, kind: failedKind(err), size: 0, mtimeMs: 0, inIgnoredDir: ignored, error: err as NodeJS.ErrnoException };
    return;
  }
  const paths = names.map((name) => (rel.length === 0 ? name : Buffer.concat([rel, SLASH, name])));
  // The lstat calls of a stretch of names are in flight together: one at a time, a walk waits for each round trip
  // to the thread pool (or the disk), and a drive of small files spends more time walking than uploading.
  let stats: Array<Stats | NodeJS.ErrnoException> = [];
  for (const [i, name] of names.entries()) {
    if (i % LSTAT_AHEAD === 0) {
      const batch = paths.slice(i, i + LSTAT_AHEAD).map((p) => Buffer.concat([root, SLASH, p]));
      stats = options.sync
        ? batch.map((p) => {
            try {
              return lstatSync(p);
            } catch (err) {
              return err as NodeJS.ErrnoException;
            }
          })
        : await Promise.all(batch.map((p) => lstat(p).catch((err: NodeJS.ErrnoException) => err)));
    }
    const path = paths[i]!;
    const nameText = decodeName(name);
    const text = relText === undefined || nameText === undefined ? undefined : relText === '' ? nameText : `${relText}/${nameText}`;
    const st = stats[i % LSTAT_AHEAD]!;
    if (st instanceof Error) {
      yield { path, text, kind: failedKind(st), size: 0, mtimeMs: 0, inIgnoredDir: ignored, error: st };
      continue;
    }
    if (st.isDirectory()) {
      const subIgnored = ignored || (text !== undefined && (options.ignoresDir?.(`${text}/`) ?? false));
      yield* walkDir(root, path, text, subIgnored, options);
      continue;
    }
    yield { path, text, kind: kindOf(st), size: st.size, mtimeMs: st.mtimeMs, inIgnoredDir: ignored };
  }
}

/**
 * An entry the walk could not look at. ENAMETOOLONG is not the device failing: a file system can hold paths
 * longer than the system's PATH_MAX (4096 bytes from `/`), which no path-based call can name. Such an entry (a
 * file, or a directory with all it holds) cannot be read, and its key is usually over 1024 bytes anyway.
 */
function failedKind(err: unknown): EntryKind {
  return (err as NodeJS.ErrnoException).code === 'ENAMETOOLONG' ? 'path-too-long' : 'unreadable-dir';
}

function kindOf(st: Stats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block-device';
  return 'char-device';
}

/** A path's bytes shown to a person: UTF-8 where it is, `\xNN` for the bytes that are not. */
export function displayPath(path: Buffer, text: string | undefined): string {
  if (text !== undefined) return text;
  let out = '';
  for (const part of path.toString('latin1').split('/')) {
    const bytes = Buffer.from(part, 'latin1');
    const decoded = decodeName(bytes);
    out += (out === '' ? '' : '/') + (decoded ?? [...bytes].map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join(''));
  }
  return out;
}
