import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { s3ClientFor } from './support/rgw.js';
import { MiB, bytes, logFromBucket, md5, objectsIn, openUploads, setupLoad, writeDrive } from './support/load.js';
import { station } from './support/station.js';

const LONG_DIR = Array.from({ length: 6 }, (_, i) => `${String(i).repeat(200)}`).join('/');

test('a drive with every kind of entry loads with one log row per file, each object checked against the drive', async (t) => {
  const setup = await setupLoad(t, {
    manifest: [
      'prefix: in/',
      'substitutions:',
      '  "in/rename/": "in/renamed-"',
      '  "DROP": ""',
      'ignore:',
      '  - \\.tmp$',
      '  - ^cache/',
      'contentTypes:',
      '  dat: application/x-station-dat',
      '  JPG: image/x-upper-jpeg',
      'defaultContentType: application/x-unknown',
      'setContentEncodingForGzFiles: yes',
      'cacheControl: max-age=60',
      'contentDisposition: attachment',
      'contentLanguage: fr',
      'expires: Thu, 01 Dec 2033 16:00:00 GMT',
      'staticMetadata:',
      '  origin: station-test',
      'diskTimestampMetadataKey: disk-mtime',
      '',
    ].join('\n'),
  });
  const big = bytes(12 * MiB + 12345, 7);
  const files: Record<string, string | Buffer> = {
    'small.dat': bytes(1000, 1),
    'empty.txt': '',
    'big.bin': big,
    'photo.JPG': bytes(300, 2),
    'photo.jpg': bytes(301, 3),
    'no-extension': 'x',
    'notes.txt.gz': gzipSync('hello gzip\n'),
    'fake.gz': 'not gzip at all',
    'with space, comma "quote".txt': 'tricky',
    'line\nbreak.txt': 'newline in the name',
    'ünïcødé/日本語.txt': 'non-ASCII',
    'rename/me.txt': 'renamed by a substitution',
    'DROP-me.txt': 'empty replacement',
    'scratch.tmp': 'ignored by pattern',
    'cache/a.txt': 'ignored with its directory',
    'cache/deep/b.txt': 'ignored with its directory',
    [`${LONG_DIR}/too-long.txt`]: 'key over 1024 bytes',
  };
  writeDrive(setup.drive, files);
  writeFileSync(Buffer.concat([Buffer.from(`${setup.drive}/latin1-`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'not UTF-8');
  const outside = join(setup.dir, 'outside-secret.txt');
  writeFileSync(outside, 'never read');
  symlinkSync(outside, join(setup.drive, 'link-out'));
  execFileSync('mkfifo', [join(setup.drive, 'pipe')]);

  const r = setup.run(['load', setup.drive, '--json']);
  assert.equal(r.code, 3, `CompletedWithErrors exits 3: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.equal(out.jobStatus, 'CompletedWithErrors');
  assert.equal(out.errorCount, 3, 'InvalidFileName, InvalidSubstitution, KeyTooLongError');

  const { text, rows } = await logFromBucket(setup);
  assert.ok(text.startsWith('DateTime,File,Status,Code,Key,MD5,Bytes,Content-Type\r\n'));
  const byFile = new Map(rows.map((row) => [row.File, row]));
  assert.equal(rows.length, byFile.size, 'one row per file');
  const expectRow = (file: string, status: string, code: string) => {
    const row = byFile.get(file);
    assert.ok(row, `a row for ${JSON.stringify(file)}`);
    assert.equal(`${row.Status} ${row.Code}`, `${status} ${code}`, file);
    return row;
  };

  const objects = await objectsIn(setup.s3, setup.bucket);
  const stored = Object.entries(files).filter(([f]) => !/(DROP|\.tmp$|^cache\/|too-long)/.test(f));
  for (const [file, content] of stored) {
    const row = expectRow(file, '200', 'OK');
    const key = row.Key.slice(setup.bucket.length + 1);
    assert.equal(row.Key, `${setup.bucket}/${key}`);
    assert.equal(row.MD5, md5(content), `${file}: logged MD5 is the file's`);
    assert.equal(row.Bytes, String(Buffer.byteLength(content)));
    assert.deepEqual(objects.get(key), Buffer.from(content), `${file}: the object holds the file's bytes`);
  }
  assert.equal(objects.size, stored.length, 'nothing else was stored');
  assert.ok(objects.has('in/renamed-me.txt'), 'prefix then substitution');
  assert.ok(objects.has('in/ünïcødé/日本語.txt'));
  assert.ok(objects.has('in/line\nbreak.txt'));

  expectRow('SIGNATURE', '103', 'Ignored');
  for (const f of ['scratch.tmp', 'cache/a.txt', 'cache/deep/b.txt']) expectRow(f, '103', 'Ignored');
  expectRow('link-out', '104', 'NotRegularFile');
  expectRow('pipe', '104', 'NotRegularFile');
  expectRow('latin1-\\xe9.txt', '400', 'InvalidFileName');
  expectRow('DROP-me.txt', '400', 'InvalidSubstitution');
  expectRow(`${LONG_DIR}/too-long.txt`, '400', 'KeyTooLongError');

  assert.equal(byFile.get('small.dat')!['Content-Type'], 'application/x-station-dat', 'the manifest table');
  assert.equal(byFile.get('photo.JPG')!['Content-Type'], 'image/x-upper-jpeg', 'case-sensitive extensions');
  assert.equal(byFile.get('photo.jpg')!['Content-Type'], 'image/jpeg', 'the built-in table');
  assert.equal(byFile.get('no-extension')!['Content-Type'], 'application/x-unknown', 'the default type');
  assert.equal(byFile.get('notes.txt.gz')!['Content-Type'], 'text/plain', '.gz dropped before the look-up');
  assert.equal(byFile.get('fake.gz')!['Content-Type'], 'application/gzip', 'no gzip magic, no encoding');

  // the walk order: depth-first, names in byte order
  const order = rows.map((row) => row.File);
  assert.deepEqual(order, [...order].sort((a, b) => Buffer.compare(Buffer.from(a.replaceAll('/', '\u0000')), Buffer.from(b.replaceAll('/', '\u0000')))));

  const client = s3ClientFor(setup.s3);
  t.after(() => client.destroy());
  const head = (key: string) => client.send(new HeadObjectCommand({ Bucket: setup.bucket, Key: key }));
  const gz = await head('in/notes.txt.gz');
  assert.equal(gz.ContentEncoding, 'gzip');
  assert.equal((await head('in/fake.gz')).ContentEncoding, undefined);
  const small = await head('in/small.dat');
  assert.equal(small.CacheControl, 'max-age=60');
  assert.equal(small.ContentDisposition, 'attachment');
  assert.equal(small.ContentLanguage, 'fr');
  assert.equal(small.Expires?.toISOString(), '2033-12-01T16:00:00.000Z');
  assert.equal(small.Metadata?.origin, 'station-test');
  assert.match(small.Metadata?.['disk-mtime'] ?? '', /^\d{4}-\d\d-\d\dT/);
  const bigHead = await head('in/big.bin');
  assert.match(bigHead.ETag!, /-3"$/, 'above the threshold: a 3-part multipart upload');
  assert.equal(bigHead.ContentLength, big.length);
  assert.equal((await head('in/empty.txt')).ContentLength, 0);
  assert.equal(await openUploads(setup.s3, setup.bucket), 0, 'no multipart upload left open');

  const status = JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout);
  assert.equal(status.jobStatus, 'CompletedWithErrors');
  assert.equal(status.deviceStatus, 'AtAWS');
  assert.equal(status.errorCount, 3);
  assert.equal(status.logBucket, setup.logBucket);
  assert.equal(status.logKey, `import-log-${setup.jobId}`);
});

test('a clean drive ends Completed (exit 0), the log under logPrefix, a copy on the station', async (t) => {
  const setup = await setupLoad(t, { manifest: 'logPrefix: "import logs/"\n' });
  writeDrive(setup.drive, { 'a.txt': 'a', 'dir/b.txt': 'b' });
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`job ${setup.jobId}: Completed`));
  assert.match(r.stdout, /200 OK\s+2/);
  assert.match(r.stdout, /MiB\/s/);
  const status = JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout);
  assert.equal(status.jobStatus, 'Completed');
  assert.equal(status.errorCount, 0);
  assert.equal(status.logKey, `import logs/import-log-${setup.jobId}`);
  const objects = await objectsIn(setup.s3, setup.logBucket);
  const log = objects.get(`import logs/import-log-${setup.jobId}`);
  assert.ok(log, 'the log is in the log bucket under its prefix');
  const { readFileSync } = await import('node:fs');
  assert.deepEqual(readFileSync(join(setup.dataDir, 'logs', `import-log-${setup.jobId}.csv`)), log, 'the station keeps the same log');
  assert.equal(log.toString().split('\r\n').filter(Boolean).length, 4, 'header, SIGNATURE, a.txt, dir/b.txt');
  mkdirSync(join(setup.drive, 'again'));
  const again = setup.run(['load', setup.drive]);
  assert.equal(again.code, 4, 'a Completed job is not loaded again');
  assert.match(again.stderr, /^JobNotLoadable: job \w+ is Completed/);
});

test('with s3.directPut off, every request goes through the SDK and stores the same objects and headers', async (t) => {
  const setup = await setupLoad(t, {
    manifest: 'cacheControl: max-age=5\nstaticMetadata:\n  origin: sdk-path\n',
  });
  const { readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(setup.configFile, readFileSync(setup.configFile, 'utf8').replace(/^s3:\n/, 's3:\n  directPut: false\n'));
  assert.match(readFileSync(setup.configFile, 'utf8'), /^s3:\n  directPut: false\n/);
  const files = { 'a b.txt': 'with a space', 'ü/x.bin': bytes(3000, 5), 'big.bin': bytes(6 * MiB, 6) };
  writeDrive(setup.drive, files);
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 0, r.stderr);
  const objects = await objectsIn(setup.s3, setup.bucket);
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects.get(name)!), md5(content), name);
  assert.equal(await openUploads(setup.s3, setup.bucket), 0, 'the multipart upload completed through the SDK');
  const client = s3ClientFor(setup.s3);
  t.after(() => client.destroy());
  const head = await client.send(new HeadObjectCommand({ Bucket: setup.bucket, Key: 'a b.txt' }));
  assert.equal(head.CacheControl, 'max-age=5');
  assert.equal(head.Metadata?.origin, 'sdk-path');
});

test('credentials from a profile: with AWS_PROFILE set, keys in the environment are not used, as by the SDK chain', async (t) => {
  const setup = await setupLoad(t);
  const files = { 'a.txt': 'a', 'big.bin': bytes(6 * MiB, 9) };
  writeDrive(setup.drive, files);
  const credentials = join(setup.dir, 'aws-credentials');
  writeFileSync(credentials, `[station]\naws_access_key_id = ${setup.s3.accessKeyId}\naws_secret_access_key = ${setup.s3.secretAccessKey}\n`);
  // Wrong keys in the environment: were they used, radosgw would refuse every request (InvalidAccessKeyId).
  const env = {
    STATION_CONFIG: setup.configFile,
    STATION_DATA_DIR: setup.dataDir,
    AWS_ACCESS_KEY_ID: 'AKIDNOTTHEONE',
    AWS_SECRET_ACCESS_KEY: 'not-the-secret',
    AWS_PROFILE: 'station',
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_CONFIG_FILE: join(setup.dir, 'no-aws-config'),
  };
  const r = station(['load', setup.drive], { env });
  assert.equal(r.code, 0, r.stderr);
  const objects = await objectsIn(setup.s3, setup.bucket);
  for (const [name, content] of Object.entries(files)) assert.equal(md5(objects.get(name)!), md5(content), name);
});
