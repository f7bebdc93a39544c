import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeBucket, useRgw } from './support/rgw.js';
import { ACCESS_KEY_ID, SECRET_KEY, errorName, manifestFixture, tempStation } from './support/station.js';

/** A fixture manifest pointed at other buckets. */
function manifestFor(dir: string, bucket: string, logBucket?: string): string {
  let text = readFileSync(manifestFixture('good/minimal.yaml'), 'utf8').replace('bucket: import-demo', `bucket: ${bucket}`);
  if (logBucket) text += `logBucket: ${logBucket}\n`;
  const file = join(dir, `manifest-${bucket}-${logBucket ?? ''}.yaml`);
  writeFileSync(file, text);
  return file;
}

test('CREATE JOB checks the bucket and the log bucket exist on the configured S3 (radosgw)', async (t) => {
  const s3 = await useRgw();
  const bucket = await makeBucket(s3, 'check');
  const s = tempStation(t);
  writeFileSync(s.configFile, `s3:\n  endpoint: ${s3.endpoint}\n`);
  const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  assert.equal(s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY }).code, 0);

  const ok = s.run(['job', 'create', manifestFor(s.dir, bucket)], { env });
  assert.equal(ok.code, 0, ok.stderr);

  const missing = s.run(['job', 'create', manifestFor(s.dir, `${bucket}-gone`)], { env });
  assert.equal(missing.code, 1);
  assert.equal(errorName(missing), 'NoSuchBucket');
  assert.match(missing.stderr, new RegExp(`${bucket}-gone`));

  const noLogBucket = s.run(['job', 'create', manifestFor(s.dir, bucket, `${bucket}-logs`)], { env });
  assert.equal(noLogBucket.code, 1);
  assert.equal(errorName(noLogBucket), 'NoSuchBucket');
  assert.match(noLogBucket.stderr, new RegExp(`${bucket}-logs`));

  const offline = s.run(['job', 'create', manifestFor(s.dir, `${bucket}-gone`), '--no-bucket-check'], { env });
  assert.equal(offline.code, 0, '--no-bucket-check skips the check');

  const jobs = JSON.parse(s.run(['job', 'list', '--json']).stdout).jobs;
  assert.equal(jobs.length, 2, 'the refused creates made no job');

  const id = ok.stdout.split('\n')[0]!;
  const update = s.run(['job', 'update', id, manifestFor(s.dir, `${bucket}-gone`)], { env });
  assert.equal(update.code, 1);
  assert.equal(errorName(update), 'NoSuchBucket');
});

test('an unreachable S3 endpoint is a clear error (exit 2) that points at --no-bucket-check', (t) => {
  const s = tempStation(t);
  writeFileSync(s.configFile, 's3:\n  endpoint: http://127.0.0.1:9\n');
  s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY });
  const r = s.run(['job', 'create', manifestFixture('good/minimal.yaml')], { env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' } });
  assert.equal(r.code, 2);
  assert.equal(errorName(r), 'S3Unreachable');
  assert.match(r.stderr, /--no-bucket-check/);
  assert.deepEqual(JSON.parse(s.run(['job', 'list', '--json']).stdout).jobs, []);
});
