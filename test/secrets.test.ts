import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { ACCESS_KEY_ID, SECRET_KEY, manifestFixture, tempStation, type Result } from './support/station.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

test('no secret appears in any output or in any file outside the data directory; the data directory is private', (t) => {
  const s = tempStation(t);
  const outputs: Result[] = [];
  const run = (args: string[], input?: string) => {
    const r = s.run(args, input === undefined ? {} : { input });
    outputs.push(r);
    return r;
  };
  run(['account', 'add', ACCESS_KEY_ID], `${SECRET_KEY}\n`);
  run(['account', 'add', ACCESS_KEY_ID, '--json'], SECRET_KEY);
  run(['account', 'list']);
  run(['account', 'list', '--json']);
  const sigFile = join(s.dir, 'SIGNATURE');
  const id = run(['job', 'create', manifestFixture('good/full.yaml'), '--signature-out', sigFile, '--no-bucket-check']).stdout.split('\n')[0]!;
  run(['job', 'create', manifestFixture('good/minimal.yaml'), '--no-bucket-check', '--json']);
  run(['job', 'status', id]);
  run(['job', 'status', id, '--json']);
  run(['job', 'list', '--json']);
  run(['job', 'update', id, manifestFixture('good/minimal.yaml'), '--no-bucket-check']);
  run(['job', 'received', id]);
  run(['job', 'cancel', id, '--json']);
  run(['job', 'create', manifestFixture('bad/bad-acl.yaml'), '--no-bucket-check']);
  run(['account', 'add', 'bad id!'], SECRET_KEY);
  for (const r of outputs) {
    assert.ok(!r.stdout.includes(SECRET_KEY) && !r.stderr.includes(SECRET_KEY), `no secret in: ${r.stdout}${r.stderr}`);
  }
  assert.ok(outputs.filter((r) => r.code === 0).length >= 12, 'the commands ran');

  for (const file of filesUnder(s.dir)) {
    if (!relative(s.dataDir, file).startsWith('..')) continue;
    assert.ok(!readFileSync(file).includes(SECRET_KEY), `no secret in ${file}`);
  }
  assert.ok(readFileSync(join(s.dataDir, 'station.db')).includes(SECRET_KEY), 'the secret is kept in the data directory');
  assert.equal(statSync(s.dataDir).mode & 0o777, 0o700);
  for (const file of filesUnder(s.dataDir)) assert.equal(statSync(file).mode & 0o077, 0, `${file} is not readable by others`);
});

test('account add refuses an empty secret and a malformed access key ID, storing nothing', (t) => {
  const s = tempStation(t);
  const empty = s.run(['account', 'add', ACCESS_KEY_ID], { input: '' });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /no secret key on standard input/);
  const bad = s.run(['account', 'add', 'short'], { input: SECRET_KEY });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ACCESS_KEY_ID "short"/);
  assert.deepEqual(JSON.parse(s.run(['account', 'list', '--json']).stdout).accounts, []);
});
