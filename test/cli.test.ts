import assert from 'node:assert/strict';
import { test } from 'node:test';
import { station } from './support/station.js';

const COMMANDS = [
  'account add',
  'account list',
  'job create',
  'job status',
  'job update',
  'job cancel',
  'job list',
  'job received',
  'job returned',
  'sign',
];

test('every command has --help, naming its usage', () => {
  for (const name of COMMANDS) {
    const r = station([...name.split(' '), '--help']);
    assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: station ${name}\\b`), name);
    assert.match(r.stdout, /--json/);
  }
});

test('station with no command prints the commands and exits 2', () => {
  const r = station([]);
  assert.equal(r.code, 2);
  for (const name of COMMANDS) assert.ok(r.stderr.includes(name), `overview lists ${name}`);
});

test('station --help and station job --help list the commands and exit 0', () => {
  assert.equal(station(['--help']).code, 0);
  const job = station(['job', '--help']);
  assert.equal(job.code, 0);
  assert.match(job.stdout, /job cancel/);
  assert.doesNotMatch(job.stdout, /account add/);
});

test('an unknown command, an unknown option and a missing argument are usage errors (exit 2)', () => {
  const unknown = station(['job', 'explode']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^Usage: unknown command "job explode"/);

  const option = station(['job', 'list', '--colour']);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /^Usage: .*--colour/);

  const missing = station(['job', 'status']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^Usage: station job status takes JOBID/);
});
