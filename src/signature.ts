import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The SIGNATURE file (contract §3): base64(HMAC-SHA1(secret, jobId + "\n" + manifest)), the manifest being the
 * exact bytes given at CREATE JOB with every CRLF turned to LF.
 */

export interface SignatureFile {
  version: string;
  signingMethod: string;
  jobId: string;
  signature: string;
}

export function sign(secretKey: string, jobId: string, manifest: Buffer): string {
  const hmac = createHmac('sha1', secretKey);
  hmac.update(`${jobId}\n`);
  hmac.update(crlfToLf(manifest));
  return hmac.digest('base64');
}

export function signatureFileText(jobId: string, signature: string): string {
  return `version:2.0\nsigningMethod:HmacSHA1\njobId:${jobId}\nsignature:${signature}\n`;
}

/** Constant-time check of a SIGNATURE's signature against the one computed from the stored manifest. */
export function signatureMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'base64');
  const b = Buffer.from(given, 'base64');
  // timingSafeEqual needs equal lengths; comparing a against itself keeps the time the same on a length mismatch.
  return a.length === b.length ? timingSafeEqual(a, b) : (timingSafeEqual(a, a), false);
}

function crlfToLf(bytes: Buffer): Buffer {
  if (!bytes.includes('\r\n')) return bytes;
  return Buffer.from(bytes.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
}

export type ParsedSignature = { ok: true; file: SignatureFile } | { ok: false; problem: string };

/** The four lines of a SIGNATURE, by their names in lower case (names are read case-insensitively). */
const FIELDS = { version: 'version', signingmethod: 'signingMethod', jobid: 'jobId', signature: 'signature' } as const;
type FieldName = (typeof FIELDS)[keyof typeof FIELDS];

/**
 * Reads a SIGNATURE file tolerantly where the contract says so (§3): any line order, optional space after the
 * colon, CRLF or LF, version 1.0 or 2.0, blank lines, a leading byte-order mark. Everything else is refused with
 * the problem in words, instead of throwing: an unreadable SIGNATURE is an outcome of a load, not a crash. All four
 * lines are required, each once: a file with two `jobId` lines (two SIGNATUREs pasted together) cannot say which
 * job it is for, and an unknown line is more likely a damaged file than a newer format.
 */
export function parseSignatureFile(text: string): ParsedSignature {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (body.trim() === '') return { ok: false, problem: 'the file is empty' };
  const fields = new Map<FieldName, string>();
  for (const line of body.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon < 0) return { ok: false, problem: `line "${shown(line)}" is not name:value` };
    const raw = line.slice(0, colon).trim();
    const name = (FIELDS as Record<string, FieldName>)[raw.toLowerCase()];
    if (name === undefined) return { ok: false, problem: `unknown line "${shown(raw)}" (a SIGNATURE has version, signingMethod, jobId, signature)` };
    if (fields.has(name)) return { ok: false, problem: `${name} appears twice (two SIGNATURE files in one?)` };
    fields.set(name, line.slice(colon + 1).trim());
  }
  for (const name of Object.values(FIELDS)) {
    if (!fields.get(name)) return { ok: false, problem: `no ${name} line` };
  }
  const version = fields.get('version')!;
  const signingMethod = fields.get('signingMethod')!;
  const jobId = fields.get('jobId')!;
  const signature = fields.get('signature')!;
  if (version !== '1.0' && version !== '2.0') return { ok: false, problem: `version ${shown(version)} is not 1.0 or 2.0` };
  if (signingMethod !== 'HmacSHA1') return { ok: false, problem: `signingMethod ${shown(signingMethod)} is not HmacSHA1` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return { ok: false, problem: 'the signature is not base64' };
  return { ok: true, file: { version, signingMethod, jobId, signature } };
}

/** A piece of a hostile file, safe to put in a message: at most 40 characters, control characters as \xNN. */
export function shown(s: string): string {
  const cut = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
