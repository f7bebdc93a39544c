import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSignatureFile } from '../src/signature.js';
import { ACCESS_KEY_ID, SECRET_KEY, errorName, manifestFixture, tempStation } from './support/station.js';

/** HMAC-SHA1 computed outside the station, by openssl, over jobId + "\n" + manifest with CRLF turned to LF. */
function opensslSignature(dir: string, jobId: string, manifestFile: string): string {
  const message = join(dir, 'message');
  const text = readFileSync(manifestFile, 'latin1').replaceAll('\r\n', '\n');
  writeFileSync(message, Buffer.from(`${jobId}\n${text}`, 'latin1'));
  const digest = execFileSync('openssl', ['dgst', '-sha1', '-hmac', SECRET_KEY, '-binary', message]);
  return digest.toString('base64');
}

test('station sign prints byte for byte the SIGNATURE that job create returns, and openssl agrees', (t) => {
  const s = tempStation(t);
  s.run(['account', 'add', ACCESS_KEY_ID], { input: `${SECRET_KEY}\n` });
  const out = join(s.dir, 'SIGNATURE');
  const manifest = manifestFixture('good/full.yaml');
  const created = s.run(['job', 'create', manifest, '--signature-out', out, '--no-bucket-check', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const { jobId, signature, signatureFileContents } = JSON.parse(created.stdout);
  const fileText = readFileSync(out, 'utf8');
  assert.equal(fileText, signatureFileContents);
  assert.equal(fileText, `version:2.0\nsigningMethod:HmacSHA1\njobId:${jobId}\nsignature:${signature}\n`);

  const signed = s.run(['sign', '--manifest', manifest, '--job-id', jobId.toLowerCase()], { env: { AWS_SECRET_ACCESS_KEY: SECRET_KEY } });
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(signed.stdout, fileText, 'sign and create give the same bytes');
  assert.equal(signature, opensslSignature(s.dir, jobId, manifest));
});

test('a CRLF manifest signs the same as the LF one; the secret may come from a file', (t) => {
  const s = tempStation(t);
  const keyFile = join(s.dir, 'secret');
  writeFileSync(keyFile, `${SECRET_KEY}\n`);
  const sign = (file: string) => s.run(['sign', '--manifest', manifestFixture(file), '--job-id', 'ABCDE', '--secret-key-file', keyFile]);
  assert.notEqual(readFileSync(manifestFixture('good/crlf.yaml'), 'latin1'), readFileSync(manifestFixture('good/lf.yaml'), 'latin1'));
  const crlf = sign('good/crlf.yaml');
  const lf = sign('good/lf.yaml');
  assert.equal(crlf.code, 0, crlf.stderr);
  assert.equal(crlf.stdout, lf.stdout);
  assert.match(crlf.stdout, new RegExp(`signature:${opensslSignature(s.dir, 'ABCDE', manifestFixture('good/lf.yaml')).replace(/[+/]/g, '\\$&')}`));
  assert.notEqual(sign('good/minimal.yaml').stdout, lf.stdout, 'another manifest signs differently');
});

test('station sign refuses without a secret, with a bad job ID, and with an unreadable manifest', (t) => {
  const s = tempStation(t);
  const noSecret = s.run(['sign', '--manifest', manifestFixture('good/lf.yaml'), '--job-id', 'ABCDE']);
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.stderr, /AWS_SECRET_ACCESS_KEY/);
  const env = { AWS_SECRET_ACCESS_KEY: SECRET_KEY };
  const badId = s.run(['sign', '--manifest', manifestFixture('good/lf.yaml'), '--job-id', 'ABCD0'], { env });
  assert.equal(badId.code, 1);
  assert.equal(errorName(badId), 'InvalidJobId');
  const missing = s.run(['sign', '--manifest', join(s.dir, 'gone.yaml'), '--job-id', 'ABCDE'], { env });
  assert.equal(missing.code, 2);
  assert.equal(errorName(missing), 'UnreadableFile');
});

test('SIGNATURE files are read tolerantly: any order, spaces after colons, CRLF, version 1.0', () => {
  const parsed = parseSignatureFile('signature: abc+/=\r\njobId:ABCDE\r\nversion: 1.0\r\nsigningMethod:HmacSHA1\r\n');
  assert.deepEqual(parsed, { ok: true, file: { version: '1.0', signingMethod: 'HmacSHA1', jobId: 'ABCDE', signature: 'abc+/=' } });
  assert.equal(parseSignatureFile('jobId:ABCDE\n').ok, false);
  assert.equal(parseSignatureFile('jobId:ABCDE\nsignature:abc\nsigningMethod:HmacSHA256\n').ok, false);
  assert.equal(parseSignatureFile('garbage without colon\n').ok, false);
});
