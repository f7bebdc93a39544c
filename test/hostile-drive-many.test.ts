// 50,000 tiny files (issue 5): the station's cost per file, not its bandwidth. Its own file, with a generous
// timeout, so the rest of the suite does not wait on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { buildManySmallFiles, snapshotTree } from '../fixtures/hostile/build.js';
import { checkRows } from './support/hostile.js';
import { s3ClientFor } from './support/rgw.js';
import { logFromBucket, md5, openUploads, setupLoad } from './support/load.js';

const COUNT = 50_000;

test(`${COUNT.toLocaleString('en')} small files: one row each, every object's bytes checked`, { timeout: 15 * 60_000 }, async (t) => {
  const setup = await setupLoad(t);
  const expected = buildManySmallFiles(setup.drive, COUNT);
  const before = snapshotTree(setup.drive);
  const started = Date.now();
  const r = await setup.runAsync(['load', setup.drive, '--json']);
  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`${COUNT} files loaded in ${seconds.toFixed(1)} s (${Math.round(COUNT / seconds)} files/s)`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).jobStatus, 'Completed');

  const { rows } = await logFromBucket(setup);
  checkRows(rows, expected, setup.bucket);

  // Every object's ETag (a single PUT's is the MD5 S3 computed of what it stored) against the file's MD5, from
  // the listing; and a sample of objects read back whole.
  const client = s3ClientFor(setup.s3);
  t.after(() => client.destroy());
  const etags = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: setup.bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) etags.set(o.Key!, o.ETag!.replaceAll('"', ''));
    token = page.NextContinuationToken;
  } while (token);
  assert.equal(etags.size, COUNT, 'exactly the files, nothing else');
  for (const e of expected) assert.equal(etags.get(e.key!), md5(e.content!), `${e.file}: the stored bytes' MD5`);
  for (let i = 0; i < COUNT; i += 997) {
    const e = expected[i]!;
    const got = await client.send(new GetObjectCommand({ Bucket: setup.bucket, Key: e.key! }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), e.content, e.file);
  }
  assert.equal(await openUploads(setup.s3, setup.bucket), 0);
  assert.deepEqual(snapshotTree(setup.drive), before, 'the drive is not written');
});
