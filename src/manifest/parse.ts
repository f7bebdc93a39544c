import { Lexer, parseDocument } from 'yaml';
import { refused } from '../errors.js';
import * as check from './fields.js';
import { ACLS, DEFAULT_CONTENT_TYPE, type Acl, type Manifest, type ReturnAddress } from './types.js';

/** What the import log's key may take at most: `logPrefix + "import-log-" + JOBID` ≤ 1024 bytes. */
const LOG_NAME_BYTES = 'import-log-'.length + 5;

/**
 * A manifest is a page of fields; these bound what a hostile one can cost before it is refused. Larger than 1 MiB
 * is not read at all (`src/cli/input.ts` stops reading there); a flow collection nested deeper than any manifest
 * needs is refused before the parser recurses into it (half a million `[` took 3 s and 650 MB); an alias may be
 * used, but 100 alias expansions at most ("billion laughs": nine lines that expand to 10^9 values).
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
const MAX_FLOW_DEPTH = 16;
const MAX_ALIAS_COUNT = 100;

/**
 * Parses and validates a manifest (contract §2). The bytes are the customer's: they are kept as given elsewhere,
 * and here only read. Every refusal names the field.
 */
export function parseManifest(bytes: Buffer): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw tooLarge(bytes.length);
  const text = decodeUtf8(bytes);
  refuseDeepNesting(text);
  // The failsafe schema reads every scalar as the string written: `2.0` stays "2.0", `yes` stays "yes", and a
  // prefix of `007` keeps its zeros.
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw refused('MalformedManifest', `the manifest is not valid YAML: ${firstLine(doc.errors[0]!.message)}`);
  }
  let root: unknown;
  try {
    root = doc.toJS({ mapAsMap: true, maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml package throws a ReferenceError for too many alias expansions and for an alias with no anchor.
    throw refused('MalformedManifest', `the manifest's aliases cannot be used: ${firstLine((err as Error).message)}`);
  }
  if (!(root instanceof Map)) throw refused('MalformedManifest', 'the manifest is not a YAML mapping of fields');
  return readManifest(new Fields(root, ''));
}

export function tooLarge(size: number | string): Error {
  return refused('MalformedManifest', `the manifest is ${size} bytes: a manifest is at most 1 MiB`);
}

/** Flow collections (`[`, `{`) nested deeper than a manifest ever needs, found by the lexer alone (no recursion). */
function refuseDeepNesting(text: string): void {
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') depth++;
    else if (token === ']' || token === '}') depth = Math.max(0, depth - 1);
    if (depth > MAX_FLOW_DEPTH) throw refused('MalformedManifest', `the manifest nests collections more than ${MAX_FLOW_DEPTH} deep`);
  }
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw refused('MalformedManifest', 'the manifest is not UTF-8 text');
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function readManifest(f: Fields): Manifest {
  const version = f.required('manifestVersion');
  if (version !== '1.0' && version !== '2.0') f.invalid('manifestVersion', `"${version}" is not 1.0 or 2.0`);
  const bucket = f.required('bucket', check.bucketProblem);
  const logPrefix = f.optional('logPrefix') ?? '';
  if (Buffer.byteLength(logPrefix) + LOG_NAME_BYTES > 1024) {
    f.invalid('logPrefix', `the log's key would be over 1024 bytes (${Buffer.byteLength(logPrefix)}-byte prefix)`);
  }
  const manifest: Manifest = {
    manifestVersion: version as Manifest['manifestVersion'],
    accessKeyId: f.required('accessKeyId', check.accessKeyIdProblem),
    bucket,
    deviceId: f.required('deviceId'),
    returnAddress: readReturnAddress(f.mapping('returnAddress', true)!),
    prefix: f.optional('prefix') ?? '',
    substitutions: f.pairs('substitutions', (from) => (from === '' ? 'an empty string cannot be substituted' : undefined)),
    ignore: f.list('ignore', check.regexProblem),
    contentTypes: new Map(f.pairs('contentTypes', extensionProblem, check.mimeProblem)),
    defaultContentType: f.optional('defaultContentType', check.mimeProblem) ?? DEFAULT_CONTENT_TYPE,
    setContentEncodingForGzFiles: f.flag('setContentEncodingForGzFiles'),
    acl: f.oneOf('acl', ACLS) ?? ('private' as Acl),
    cacheControl: f.optional('cacheControl', check.headerValueProblem),
    contentDisposition: f.optional('contentDisposition', check.headerValueProblem),
    contentLanguage: f.optional('contentLanguage', check.headerValueProblem),
    expires: f.optional('expires', check.dateProblem),
    storageClass: f.oneOf('storageClass', check.STORAGE_CLASSES),
    staticMetadata: f.pairs('staticMetadata', check.metadataNameProblem, check.headerValueProblem),
    diskTimestampMetadataKey: f.optional('diskTimestampMetadataKey', check.metadataNameProblem),
    logBucket: f.optional('logBucket', check.bucketProblem) ?? bucket,
    logPrefix,
    notificationEmail: splitEmails(f),
    eraseDevice: f.flag('eraseDevice'),
    generator: f.optional('generator'),
    serviceLevel: f.optional('serviceLevel'),
  };
  f.refuseUnknown();
  return manifest;
}

function readReturnAddress(f: Fields): ReturnAddress {
  const address: ReturnAddress = {
    name: f.required('name'),
    company: f.optional('company'),
    street1: f.required('street1'),
    street2: f.optional('street2'),
    street3: f.optional('street3'),
    city: f.required('city'),
    stateOrProvince: f.required('stateOrProvince'),
    postalCode: f.required('postalCode'),
    phoneNumber: f.required('phoneNumber'),
    country: f.required('country'),
  };
  f.refuseUnknown();
  return address;
}

function extensionProblem(ext: string): string | undefined {
  if (ext === '') return 'an empty extension';
  return ext.includes('.') || ext.includes('/') ? `"${ext}": an extension is written without a dot or slash` : undefined;
}

function splitEmails(f: Fields): string[] {
  const raw = f.optional('notificationEmail');
  if (raw === undefined) return [];
  const addresses = raw.split(';').map((a) => a.trim()).filter((a) => a !== '');
  for (const a of addresses) {
    const problem = check.emailProblem(a);
    if (problem) f.invalid('notificationEmail', problem);
  }
  return addresses;
}

type Check = (value: string) => string | undefined;

/** Reads the fields of one YAML mapping, remembering which were read so the rest can be refused as unknown. */
class Fields {
  private readonly seen = new Set<string>();

  constructor(
    readonly entries: Map<unknown, unknown>,
    private readonly path: string,
  ) {
    for (const key of entries.keys()) {
      if (typeof key !== 'string') throw refused('MalformedManifest', `${this.name(String(key))}: a field name must be plain text`);
    }
  }

  name(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  invalid(key: string, reason: string): never {
    throw refused('InvalidManifestField', `${this.name(key)}: ${reason}`);
  }

  private raw(key: string): unknown {
    this.seen.add(key);
    return this.entries.get(key);
  }

  /** A scalar; an empty value counts as absent. */
  optional(key: string, problem?: Check): string | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') this.invalid(key, 'expected a single value');
    const reason = problem?.(value);
    if (reason) this.invalid(key, reason);
    return value;
  }

  required(key: string, problem?: Check): string {
    const value = this.optional(key, problem);
    if (value === undefined) throw refused('MissingManifestField', `${this.name(key)}: required, and missing or empty`);
    return value;
  }

  flag(key: string): boolean {
    const value = this.optional(key);
    if (value === undefined) return false;
    const flag = check.yesNo(value);
    if (flag === undefined) this.invalid(key, `"${value}" is not yes or no`);
    return flag;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const value = this.optional(key);
    if (value !== undefined && !allowed.includes(value as T)) {
      this.invalid(key, `"${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T | undefined;
  }

  mapping(key: string, required = false): Fields | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') {
      if (required) throw refused('MissingManifestField', `${this.name(key)}: required, and missing or empty`);
      return undefined;
    }
    if (!(value instanceof Map)) this.invalid(key, 'expected a mapping of names to values');
    return new Fields(value, this.name(key));
  }

  /** A mapping of scalars to scalars, in manifest order. */
  pairs(key: string, keyProblem?: Check, valueProblem?: Check): Array<[string, string]> {
    const sub = this.mapping(key);
    if (!sub) return [];
    const out: Array<[string, string]> = [];
    for (const [k, v] of sub.entries) {
      const name = sub.name(k as string);
      if (typeof v !== 'string') throw refused('InvalidManifestField', `${name}: expected a single value`);
      const reason = keyProblem?.(k as string) ?? valueProblem?.(v);
      if (reason) throw refused('InvalidManifestField', `${name}: ${reason}`);
      out.push([k as string, v]);
    }
    return out;
  }

  list(key: string, problem?: Check): string[] {
    const value = this.raw(key);
    if (value === undefined || value === '') return [];
    if (!Array.isArray(value)) this.invalid(key, 'expected a list');
    return value.map((item: unknown, i) => {
      if (typeof item !== 'string' || item === '') this.invalid(`${key}[${i}]`, 'expected a non-empty single value');
      const reason = problem?.(item);
      if (reason) this.invalid(`${key}[${i}]`, reason);
      return item;
    });
  }

  refuseUnknown(): void {
    for (const key of this.entries.keys()) {
      if (!this.seen.has(key as string)) this.invalid(key as string, 'unknown field');
    }
  }
}
