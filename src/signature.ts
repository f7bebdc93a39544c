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

/**
 * Reads a SIGNATURE file tolerantly: any line order, optional space after the colon, CRLF or LF, version 1.0 or
 * 2.0. Returns the problem in words instead of throwing: an unreadable SIGNATURE is an outcome of a load, not a
 * crash.
 */
export function parseSignatureFile(text: string): ParsedSignature {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon < 0) return { ok: false, problem: `line "${line.slice(0, 40)}" is not name:value` };
    fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const get = (name: string) => fields.get(name) ?? fields.get(name.toLowerCase());
  const version = get('version');
  const signingMethod = get('signingMethod');
  const jobId = get('jobId');
  const signature = get('signature');
  if (!jobId) return { ok: false, problem: 'no jobId line' };
  if (!signature) return { ok: false, problem: 'no signature line' };
  if (version !== undefined && version !== '1.0' && version !== '2.0') {
    return { ok: false, problem: `version ${version} is not 1.0 or 2.0` };
  }
  if (signingMethod !== undefined && signingMethod !== 'HmacSHA1') {
    return { ok: false, problem: `signingMethod ${signingMethod} is not HmacSHA1` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return { ok: false, problem: 'the signature is not base64' };
  return { ok: true, file: { version: version ?? '2.0', signingMethod: signingMethod ?? 'HmacSHA1', jobId, signature } };
}
