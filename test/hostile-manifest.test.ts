import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logFromBucket, objectsIn, setupLoad, writeDrive } from './support/load.js';

/**
 * Manifests whose `ignore` and `substitutions` are hostile to the load, not to CREATE JOB: each file gets its row,
 * and the rest of the drive loads.
 */

// Paths on which a backtracking engine (JavaScript's RegExp) runs for longer than anyone waits: `^(a+)+$` on a run
// of a's that ends in something else, `(.*c){20}` on 19 c's followed by many other characters, `(x+x+)+y` on x's.
const EXPONENTIAL = 'a'.repeat(60) + '!.txt';
const COMBINATORIAL = `${'c'.repeat(19)}${'d'.repeat(180)}.txt`;
const NESTED = `dir/${'x'.repeat(100)}`;

test('catastrophic ignore patterns do not hang the load: matched in linear time, the drive loads', { timeout: 180_000 }, async (t) => {
  const setup = await setupLoad(t, { manifest: ['ignore:', '  - ^(a+)+$', '  - (.*c){20}', '  - (x+x+)+y'].join('\n') + '\n' });
  const ignoredByCount = `${'c'.repeat(25)}.txt`;
  writeDrive(setup.drive, {
    [EXPONENTIAL]: 'one',
    [COMBINATORIAL]: 'two',
    aaaa: 'matched by ^(a+)+$',
    [ignoredByCount]: 'matched by (.*c){20}',
    [NESTED]: 'three',
    'plain.txt': 'four',
  });
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 0, r.stderr);
  const { rows } = await logFromBucket(setup);
  const code = (file: string) => rows.find((row) => row.File === file)?.Code;
  assert.equal(code('aaaa'), 'Ignored');
  assert.equal(code(ignoredByCount), 'Ignored');
  for (const f of [EXPONENTIAL, COMBINATORIAL, NESTED, 'plain.txt']) assert.equal(code(f), 'OK', f);
  assert.deepEqual([...(await objectsIn(setup.s3, setup.bucket)).keys()].sort(), [EXPONENTIAL, COMBINATORIAL, NESTED, 'plain.txt'].sort());
});

test('substitutions that empty a key or make two files collide: those files get rows, the rest loads', async (t) => {
  // `A` → `a` makes A.txt and a.txt one key; `drop-me` → "" would cut a key down (to nothing for drop-me).
  const setup = await setupLoad(t, { manifest: 'substitutions:\n  "A": "a"\n  "drop-me": ""\n' });
  writeDrive(setup.drive, { 'A.txt': 'upper', 'a.txt': 'lower', 'drop-me': 'x', 'b.txt': 'b', 'sub/A.txt': 'sub upper' });
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 3, `exit 3: completed with errors (${r.stderr})`);
  const status = JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout);
  assert.equal(status.jobStatus, 'CompletedWithErrors');
  assert.equal(status.errorCount, 2);
  const { rows } = await logFromBucket(setup);
  const row = (file: string) => rows.find((x) => x.File === file)!;
  // Walk order is byte order: `A.txt` (0x41) comes before `a.txt` (0x61) and keeps the key.
  assert.deepEqual([row('A.txt').Code, row('A.txt').Key], ['OK', `${setup.bucket}/a.txt`]);
  assert.deepEqual([row('a.txt').Status, row('a.txt').Code, row('a.txt').Key], ['400', 'KeyCollision', '']);
  assert.deepEqual([row('drop-me').Status, row('drop-me').Code], ['400', 'InvalidSubstitution']);
  const objects = await objectsIn(setup.s3, setup.bucket);
  assert.deepEqual([...objects.keys()].sort(), ['a.txt', 'b.txt', 'sub/a.txt']);
  assert.equal(objects.get('a.txt')!.toString(), 'upper', 'the first file is not overwritten by the second');
  assert.equal(objects.get('sub/a.txt')!.toString(), 'sub upper');
  assert.match(r.stderr, /two files map to one key/);
});
