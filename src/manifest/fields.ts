/**
 * Checks for single manifest values. Each returns a reason (a short phrase) when the value is refused, or
 * undefined when it is good; the parser puts the field's name in front.
 */

import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';

// re2js is loaded when a manifest first has an `ignore` pattern: most have none, and its 270 KB of code took every
// `station load` (and its count thread) some 9 ms to load. Left out of the bundle (scripts/bundle.mjs).
const load = createRequire(import.meta.url);
let re2: typeof RE2JS | undefined;

// S3's bucket naming rules: 3–63 characters, lower-case letters, digits, dots and hyphens, starting and ending
// with a letter or digit, not shaped like an IP address, no two adjacent dots.
export function bucketProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'a bucket name has 3 to 63 characters';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return 'a bucket name has only lower-case letters, digits, dots and hyphens, and starts and ends with a letter or digit';
  }
  if (name.includes('..')) return 'a bucket name has no two adjacent dots';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'a bucket name is not an IP address';
  return undefined;
}

/** Access key IDs as AWS issues them (AKIA…, 20 characters), with room for other S3 servers' longer ones. */
export const ACCESS_KEY_ID = /^[A-Za-z0-9]{16,128}$/;

export function accessKeyIdProblem(id: string): string | undefined {
  return ACCESS_KEY_ID.test(id) ? undefined : 'an access key ID has 16 to 128 letters and digits';
}

const MIME = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?$/;
export function mimeProblem(type: string): string | undefined {
  return MIME.test(type) ? undefined : `"${type}" is not a MIME type (type/subtype)`;
}

// An HTTP header name's characters: user metadata becomes `x-amz-meta-<name>`.
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
export function metadataNameProblem(name: string): string | undefined {
  return TOKEN.test(name) ? undefined : `"${name}" is not usable as a metadata name (letters, digits and -_. only)`;
}

// Header values travel as ISO-8859-1 on the wire; refuse control characters outright (a line break would split
// the request).
export function headerValueProblem(value: string): string | undefined {
  return /[\u0000-\u001f\u007f]/.test(value) ? 'control characters and line breaks are not allowed in header values' : undefined;
}

/**
 * An `ignore` pattern is matched with RE2 (re2js), whose time is linear in the path whatever the pattern: a
 * customer's `(a+)+$` must not hold the station for hours on one long path. RE2 has no backreferences or
 * lookaround; a pattern using them is refused here, at CREATE JOB, rather than failing at the load.
 */
export function compileIgnorePattern(source: string): RE2JS {
  re2 ??= (load('re2js') as typeof import('re2js')).RE2JS;
  return re2.compile(source);
}

export function regexProblem(source: string): string | undefined {
  try {
    compileIgnorePattern(source);
    return undefined;
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    return `not a regular expression the station can match (RE2 syntax, no backreferences or lookaround): ${why}`;
  }
}

const EMAIL = /^[^\s@;]+@[^\s@;]+\.[^\s@;]+$/;
export function emailProblem(address: string): string | undefined {
  return EMAIL.test(address) ? undefined : `"${address}" is not an e-mail address`;
}

export function dateProblem(value: string): string | undefined {
  return Number.isNaN(Date.parse(value)) ? `"${value}" is not a date` : undefined;
}

export const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'GLACIER_IR',
  'DEEP_ARCHIVE',
] as const;

/** `yes`/`no` as the original service wrote them; `true`/`false` accepted too. */
export function yesNo(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  return undefined;
}
