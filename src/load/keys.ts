import type { RE2JS } from 're2js';
import { compileIgnorePattern } from '../manifest/fields.js';
import type { Manifest } from '../manifest/types.js';
import type { Entry } from './walk.js';

/**
 * What becomes of each walked entry before any byte of it is read (contract §4): its key, or the log row that
 * says why it is not uploaded.
 */

export const MAX_KEY_BYTES = 1024;
export const MAX_OBJECT_BYTES = 5 * 1024 ** 4; // 5 TiB

export type Refusal = { status: number; code: string };

export const ROWS = {
  ignored: { status: 103, code: 'Ignored' },
  notRegularFile: { status: 104, code: 'NotRegularFile' },
  invalidFileName: { status: 400, code: 'InvalidFileName' },
  invalidSubstitution: { status: 400, code: 'InvalidSubstitution' },
  keyCollision: { status: 400, code: 'KeyCollision' },
  keyTooLong: { status: 400, code: 'KeyTooLongError' },
  entityTooLarge: { status: 400, code: 'EntityTooLarge' },
  fileChanged: { status: 409, code: 'FileChanged' },
  deviceReadError: { status: 500, code: 'DeviceReadError' },
  ok: { status: 200, code: 'OK' },
} as const satisfies Record<string, Refusal>;

/** A walked entry's fate: a key to upload it to, or the row that says why it is not uploaded. */
export type Plan = { row: Refusal } | { key: string };

export class KeyMapper {
  private readonly ignore: RE2JS[];

  constructor(private readonly manifest: Manifest) {
    // RE2: linear time in the path whatever the pattern (`src/manifest/fields.ts`).
    this.ignore = manifest.ignore.map(compileIgnorePattern);
  }

  /** What becomes of a walked entry, decided from its name, kind and size alone, in the contract's order. */
  plan(e: Entry): Plan {
    if (e.kind === 'unreadable-dir') return { row: ROWS.deviceReadError };
    if (e.text === undefined) return { row: ROWS.invalidFileName };
    if (e.text === 'SIGNATURE' || e.inIgnoredDir || this.ignores(e.text)) return { row: ROWS.ignored };
    const mapped = this.keyOf(e.text);
    // Beyond PATH_MAX: its key says why when it is too long; one a substitution shortened still cannot be read.
    if (e.kind === 'path-too-long') return { row: 'refusal' in mapped ? mapped.refusal : ROWS.deviceReadError };
    if (e.kind !== 'file') return { row: ROWS.notRegularFile };
    if (e.size > MAX_OBJECT_BYTES) return { row: ROWS.entityTooLarge };
    return 'refusal' in mapped ? { row: mapped.refusal } : { key: mapped.key };
  }

  /** An `ignore` pattern matches the path (a directory's path ends with `/`). */
  ignores(path: string): boolean {
    return this.ignore.some((re) => re.test(path));
  }

  /** `prefix + path`, then the substitutions in manifest order; an empty replacement that applies refuses the file. */
  keyOf(path: string): { key: string } | { refusal: Refusal } {
    let key = this.manifest.prefix + path;
    for (const [from, to] of this.manifest.substitutions) {
      if (!key.includes(from)) continue;
      if (to === '') return { refusal: ROWS.invalidSubstitution };
      key = key.replaceAll(from, to);
    }
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) return { refusal: ROWS.keyTooLong };
    return { key };
  }
}

/**
 * Keys already given to a file of this load. Substitutions can map two paths to one key (`A.txt` and `a.txt` with
 * `A: a`); the first file in walk order keeps it and a later one is refused (`400 KeyCollision`) instead of
 * silently overwriting the first file's object. The walk order is stable, so a resumed load decides the same way.
 */
export class KeyClaims {
  private readonly owners = new Map<string, string>();

  /**
   * Without substitutions a key is the prefix plus the file's unique path: no two files can share one, and no key
   * need be held (memory then stays flat however many files a drive has).
   */
  constructor(readonly needed: boolean) {}

  static for(manifest: Manifest): KeyClaims {
    return new KeyClaims(manifest.substitutions.length > 0);
  }

  /** The file that already holds `key`, or undefined after giving it to `file`. */
  claim(key: string, file: string): string | undefined {
    if (!this.needed) return undefined;
    const owner = this.owners.get(key);
    if (owner !== undefined && owner !== file) return owner;
    this.owners.set(key, file);
    return undefined;
  }
}
