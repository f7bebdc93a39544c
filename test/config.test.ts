import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { errorName, tempStation } from './support/station.js';

function configFile(dir: string, text: string): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
}

test('an empty config file works: every setting has its default', (t) => {
  const s = tempStation(t);
  const c = loadConfig({ configFile: configFile(s.dir, ''), env: {} });
  assert.equal(c.dataDir, '/var/lib/import-station');
  assert.equal(c.s3.region, 'us-east-1');
  assert.equal(c.s3.endpoint, undefined);
  assert.equal(c.s3.configured, false);
  assert.equal(c.s3.requestChecksumCalculation, 'WHEN_SUPPORTED');
  assert.ok(c.upload.maxRequests > 0 && c.upload.memoryBytes >= c.upload.partSize);
});

test('a missing default config file is fine; a missing named one is an error', (t) => {
  const s = tempStation(t);
  assert.doesNotThrow(() => loadConfig({ env: {} }));
  assert.throws(() => loadConfig({ configFile: join(s.dir, 'absent.yaml'), env: {} }), /cannot read the config file .*absent\.yaml/);
  assert.throws(() => loadConfig({ env: { STATION_CONFIG: join(s.dir, 'absent.yaml') } }), /absent\.yaml/);
});

test('flags win over the environment, which wins over the file', (t) => {
  const s = tempStation(t);
  const file = configFile(s.dir, 'dataDir: /from/file\ns3:\n  endpoint: http://127.0.0.1:1\n  region: eu-west-1\n');
  const fromFile = loadConfig({ configFile: file, env: {} });
  assert.equal(fromFile.dataDir, '/from/file');
  assert.equal(fromFile.s3.endpoint, 'http://127.0.0.1:1');
  assert.equal(fromFile.s3.region, 'eu-west-1');
  assert.equal(fromFile.s3.forcePathStyle, true, 'path style for an S3-compatible endpoint');
  assert.equal(fromFile.s3.requestChecksumCalculation, 'WHEN_REQUIRED');
  const env = { STATION_DATA_DIR: '/from/env', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2', AWS_ENDPOINT_URL: 'http://127.0.0.1:3', AWS_REGION: 'ap-south-1' };
  const fromEnv = loadConfig({ configFile: file, env });
  assert.equal(fromEnv.dataDir, '/from/env');
  assert.equal(fromEnv.s3.endpoint, 'http://127.0.0.1:2', 'AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL');
  assert.equal(fromEnv.s3.region, 'ap-south-1');
  assert.equal(loadConfig({ configFile: file, env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:3' } }).s3.endpoint, 'http://127.0.0.1:3');
  assert.equal(loadConfig({ configFile: file, dataDir: '/from/flag', env }).dataDir, '/from/flag');
});

test('unknown keys and bad values are refused with the key named, exit 2 from the CLI', (t) => {
  const s = tempStation(t);
  const cases: Array<[string, RegExp]> = [
    ['colour: blue\n', /unknown key "colour"/],
    ['s3:\n  endpoit: http://x\n', /unknown key "s3\.endpoit"/],
    ['upload:\n  maxRequests: 0\n', /upload\.maxRequests: expected a whole number from 1/],
    ['upload:\n  memory: lots\n', /upload\.memory: expected a size/],
    ['upload:\n  partSize: 1 MiB\n', /upload\.partSize: expected a size from 5 MiB/],
    ['upload:\n  memory: 16 MiB\n  partSize: 15 MiB\n', /upload\.partSize \(15728640\) is larger than 7\/8 of upload\.memory/],
    ['s3:\n  forcePathStyle: maybe\n', /s3\.forcePathStyle: expected true or false/],
    ['s3:\n  endpoint: ftp://example.com\n', /not an http\(s\) URL/],
    ['s3: [1, 2]\n', /s3: expected a mapping/],
    ['log:\n  level: chatty\n', /log\.level: expected one of/],
    ['dataDir: [unclosed\n', /not valid YAML/],
  ];
  for (const [text, message] of cases) {
    const file = configFile(s.dir, text);
    const r = s.run(['job', 'list', '--config', file]);
    assert.equal(r.code, 2, text);
    assert.equal(errorName(r), 'BadConfig', text);
    assert.match(r.stderr, message, text);
    assert.ok(r.stderr.includes(file), `names the file: ${r.stderr}`);
  }
});

test('a bad STATION_LOG_LEVEL is a config error naming the variable', (t) => {
  const s = tempStation(t);
  const r = s.run(['job', 'list'], { env: { STATION_LOG_LEVEL: 'loud' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^BadConfig: STATION_LOG_LEVEL: "loud" is not one of/);
  assert.equal(loadConfig({ env: { STATION_LOG_LEVEL: 'debug' } }).log.level, 'debug');
});

test('drives: mount roots must be absolute; defaults watch /media, /run/media and /mnt', (t) => {
  const s = tempStation(t);
  assert.deepEqual(loadConfig({ configFile: configFile(s.dir, ''), env: {} }).drives, {
    mountRoots: ['/media', '/run/media', '/mnt'],
    pollIntervalMs: 1000,
    autoMount: true,
  });
  assert.throws(() => loadConfig({ configFile: configFile(s.dir, 'drives:\n  mountRoots: [media]\n'), env: {} }), /drives\.mountRoots: "media" is not an absolute path/);
});

test('sizes take units', (t) => {
  const s = tempStation(t);
  const c = loadConfig({ configFile: configFile(s.dir, 'upload:\n  memory: 1 GiB\n  partSize: 8MiB\n  multipartThreshold: 100000000\n'), env: {} });
  assert.equal(c.upload.memoryBytes, 1024 ** 3);
  assert.equal(c.upload.partSize, 8 * 1024 ** 2);
  assert.equal(c.upload.multipartThreshold, 1e8);
});
