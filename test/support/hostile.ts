// Checks shared by the hostile-drive tests: the log's rows and the bucket's objects against the expectations the
// corpus builder (fixtures/hostile/build.ts) returns.
import assert from 'node:assert/strict';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { walkOrder, type Expectation } from '../../fixtures/hostile/build.js';
import { s3ClientFor, type S3Conf } from './rgw.js';
import { md5, openUploads, type LoadSetup, type LogRecord } from './load.js';

/**
 * Every key in a bucket, asked with `encoding-type=url`: keys come back percent-encoded, so the check does not
 * depend on how XML carries a CR or a control character (XML 1.0 cannot hold \x01; radosgw writes it anyway,
 * and the SDK's parser reads it back, but a check should not lean on that).
 */
export async function keysIn(s3: S3Conf, bucket: string): Promise<string[]> {
  const client = s3ClientFor(s3);
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, EncodingType: 'url' }));
      for (const o of page.Contents ?? []) keys.push(decodeURIComponent(o.Key!.replaceAll('+', '%20')));
      token = page.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
  return keys;
}

export async function objectBytes(s3: S3Conf, bucket: string, key: string): Promise<Buffer> {
  const client = s3ClientFor(s3);
  try {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}

/** The rows of the log against the expectations: one row each, in walk order, with the expected status and code. */
export function checkRows(rows: LogRecord[], expected: Expectation[], bucket: string): void {
  const order = walkOrder([Buffer.from('SIGNATURE'), ...expected.map((e) => e.path)]);
  const byPath = new Map(expected.map((e) => [e.path.toString('hex'), e]));
  const files = order.map((p) => byPath.get(p.toString('hex'))?.file ?? 'SIGNATURE');
  assert.deepEqual(
    rows.map((r) => r.File),
    files,
    'one row per entry, in walk order, and the File column is the path (non-UTF-8 bytes as \\xNN)',
  );
  const byFile = new Map(rows.map((r) => [r.File, r]));
  assert.equal(`${byFile.get('SIGNATURE')!.Status} ${byFile.get('SIGNATURE')!.Code}`, '103 Ignored');
  for (const e of expected) {
    const row = byFile.get(e.file)!;
    assert.equal(`${row.Status} ${row.Code}`, `${e.status} ${e.code}`, `${e.what}: ${JSON.stringify(e.file)}`);
    if (e.content) {
      assert.equal(row.Key, `${bucket}/${e.key}`, `${e.what}: the Key column is the bucket and the file's own bytes`);
      assert.equal(row.MD5, md5(e.content), `${e.what}: MD5`);
      assert.equal(row.Bytes, String(e.content.length), `${e.what}: Bytes`);
    } else {
      assert.equal(row.MD5, '', `${e.what}: no MD5 for a file not stored`);
    }
  }
}

/** The stored objects are exactly the expected ones, each byte for byte the file. */
export async function checkObjects(setup: LoadSetup, expected: Expectation[]): Promise<void> {
  const stored = expected.filter((e) => e.content);
  const keys = await keysIn(setup.s3, setup.bucket);
  assert.deepEqual([...keys].sort(), stored.map((e) => e.key!).sort(), 'exactly the files that were stored, under their own keys');
  for (const e of stored) assert.deepEqual(await objectBytes(setup.s3, setup.bucket, e.key!), e.content, `${e.what}: the object holds the file's bytes`);
  assert.equal(await openUploads(setup.s3, setup.bucket), 0, 'no multipart upload left open');
}

