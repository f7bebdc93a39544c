import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ACCESS_KEY_ID, FIXTURES, SECRET_KEY, errorName, tempStation } from './support/station.js';

const BAD = join(FIXTURES, 'manifests', 'bad');
const GOOD = join(FIXTURES, 'manifests', 'good');

/** Each bad fixture says what it must be refused with: `# expect: CODE [field]`. */
function expectation(file: string): { code: string; field?: string } {
  const first = readFileSync(file, 'latin1').split('\n')[0]!;
  const m = /^# expect: (\w+)(?: (.+))?$/.exec(first);
  assert.ok(m, `${file} starts with "# expect: CODE [field]"`);
  return { code: m[1]!, ...(m[2] !== undefined && { field: m[2] }) };
}

test('every bad manifest is refused by CREATE JOB with its error name and field, exit 1, and no job made', (t) => {
  const s = tempStation(t);
  assert.equal(s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY }).code, 0);
  const files = readdirSync(BAD).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 25, 'a bad manifest for each kind of error');
  for (const f of files) {
    const want = expectation(join(BAD, f));
    const r = s.run(['job', 'create', join(BAD, f), '--no-bucket-check']);
    assert.equal(r.code, 1, `${f}: exit 1 (${r.stderr})`);
    assert.equal(errorName(r), want.code, `${f}: ${r.stderr}`);
    if (want.field) assert.ok(r.stderr.startsWith(`${want.code}: ${want.field}:`), `${f} names ${want.field}: ${r.stderr}`);
    assert.equal(r.stdout, '', `${f}: nothing on stdout`);
  }
  const list = JSON.parse(s.run(['job', 'list', '--json']).stdout);
  assert.deepEqual(list.jobs, [], 'no refused manifest made a job');
});

test('every good manifest creates a job whose current manifest is the exact bytes given', (t) => {
  const s = tempStation(t);
  s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY });
  for (const f of readdirSync(GOOD)) {
    const r = s.run(['job', 'create', join(GOOD, f), '--no-bucket-check', '--json']);
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    const { jobId } = JSON.parse(r.stdout);
    const status = JSON.parse(s.run(['job', 'status', jobId, '--json']).stdout);
    assert.equal(status.currentManifest, readFileSync(join(GOOD, f), 'utf8'), `${f} kept as given`);
    assert.equal(status.jobStatus, 'Pending');
  }
});

test('a manifest that cannot be read is exit 2 naming the file', (t) => {
  const s = tempStation(t);
  const r = s.run(['job', 'create', join(s.dir, 'nope.yaml'), '--no-bucket-check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^UnreadableFile: cannot read .*nope\.yaml: ENOENT/);
});

test("a manifest naming an account the station does not know is InvalidAccessKeyId", (t) => {
  const s = tempStation(t);
  const r = s.run(['job', 'create', join(GOOD, 'minimal.yaml'), '--no-bucket-check']);
  assert.equal(r.code, 1);
  assert.equal(errorName(r), 'InvalidAccessKeyId');
  assert.match(r.stderr, /AKIAIOSFODNN7EXAMPLE/);
});

test('a manifest over 1 MiB is refused before it is parsed, and an endless file is not read to its end', (t) => {
  const s = tempStation(t);
  assert.equal(s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY }).code, 0);
  const minimal = readFileSync(join(GOOD, 'minimal.yaml'), 'utf8');
  // Valid YAML either way: the fields, then a comment that brings the file to a given size.
  const padded = (size: number) => {
    const file = join(s.dir, `padded-${size}.yaml`);
    writeFileSync(file, `${minimal}#${'x'.repeat(size - Buffer.byteLength(minimal) - 2)}\n`);
    assert.equal(statSync(file).size, size);
    return file;
  };
  const atLimit = s.run(['job', 'create', padded(1024 * 1024), '--no-bucket-check']);
  assert.equal(atLimit.code, 0, `1 MiB is allowed: ${atLimit.stderr}`);
  const over = s.run(['job', 'create', padded(1024 * 1024 + 1), '--no-bucket-check']);
  assert.equal(over.code, 1);
  assert.equal(errorName(over), 'MalformedManifest');
  assert.match(over.stderr, /a manifest is at most 1 MiB/);
  const huge = s.run(['job', 'create', padded(8 * 1024 * 1024), '--no-bucket-check']);
  assert.equal(errorName(huge), 'MalformedManifest');
  const endless = s.run(['job', 'create', '/dev/zero', '--no-bucket-check']);
  assert.equal(endless.code, 1, endless.stderr);
  assert.equal(errorName(endless), 'MalformedManifest');
  assert.match(endless.stderr, /at most 1 MiB/);
  assert.equal(JSON.parse(s.run(['job', 'list', '--json']).stdout).jobs.length, 1, 'only the 1 MiB manifest made a job');
});

test('deep nesting generated up to 1 MiB is refused without recursing through it', (t) => {
  const s = tempStation(t);
  assert.equal(s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY }).code, 0);
  const file = join(s.dir, 'deep.yaml');
  const n = 500_000;
  writeFileSync(file, `${readFileSync(join(GOOD, 'minimal.yaml'), 'utf8')}ignore: ${'['.repeat(n)}${']'.repeat(n)}\n`);
  const r = s.run(['job', 'create', file, '--no-bucket-check']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(errorName(r), 'MalformedManifest');
  assert.match(r.stderr, /nests collections more than 16 deep/);
});
