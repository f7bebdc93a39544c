import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { test } from 'node:test';
import { JOB_STATUSES, canMoveJob, type JobStatus } from '../src/jobs/lifecycle.js';
import { JobStore } from '../src/jobs/store.js';
import { SCHEMA_VERSION } from '../src/jobs/db.js';
import { parseManifest } from '../src/manifest/parse.js';
import { readFileSync } from 'node:fs';
import { ACCESS_KEY_ID, SECRET_KEY, errorName, manifestFixture, tempStation, type Runner } from './support/station.js';

function setup(t: Parameters<typeof tempStation>[0]) {
  const s = tempStation(t);
  assert.equal(s.run(['account', 'add', ACCESS_KEY_ID], { input: SECRET_KEY }).code, 0);
  const create = (file = 'good/minimal.yaml'): string => {
    const r = s.run(['job', 'create', manifestFixture(file), '--no-bucket-check']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n')[0]!;
  };
  return { ...s, create };
}

const statusOf = (run: Runner, id: string) => JSON.parse(run(['job', 'status', id, '--json']).stdout);

/** Sets a job's status behind the station's back: the state a load (issue 3) would leave. */
function forceStatus(dataDir: string, id: string, status: JobStatus): void {
  const db = new Database(join(dataDir, 'station.db'));
  db.prepare('UPDATE jobs SET job_status = ? WHERE id = ?').run(status, id);
  db.close();
}

test('CREATE JOB issues a 5-character ID and a Pending job whose device is NotReceived', (t) => {
  const s = setup(t);
  const id = s.create();
  assert.match(id, /^[1-9A-NP-Z]{5}$/);
  const st = statusOf(s.run, id);
  assert.equal(st.jobId, id);
  assert.equal(st.jobStatus, 'Pending');
  assert.equal(st.deviceStatus, 'NotReceived');
  assert.ok(Math.abs(Date.parse(st.createdAt) - Date.now()) < 60_000);
  assert.deepEqual(
    st.history.map((h: { subject: string; to: string }) => [h.subject, h.to]),
    [['job', 'Pending']],
  );
});

test('job IDs are case-insensitive; malformed and unknown IDs are InvalidJobId', (t) => {
  const s = setup(t);
  const id = s.create();
  assert.equal(statusOf(s.run, id.toLowerCase()).jobId, id);
  for (const bad of ['ABCD', 'ABCD0', 'ABCDO', 'ABCDEF']) {
    const r = s.run(['job', 'status', bad]);
    assert.equal(r.code, 1, bad);
    assert.equal(errorName(r), 'InvalidJobId', bad);
  }
  const other = id === 'ZZZZZ' ? 'YYYYY' : 'ZZZZZ';
  const unknown = s.run(['job', 'cancel', other]);
  assert.equal(unknown.code, 1);
  assert.equal(errorName(unknown), 'InvalidJobId');
  assert.match(unknown.stderr, new RegExp(`no job ${other}`));
});

test('LIST JOBS lists newest first, in plain lines and JSON', (t) => {
  const s = setup(t);
  const ids = [s.create(), s.create(), s.create()];
  const json = JSON.parse(s.run(['job', 'list', '--json']).stdout);
  assert.deepEqual(
    json.jobs.map((j: { jobId: string }) => j.jobId),
    [...ids].reverse(),
  );
  const plain = s.run(['job', 'list']).stdout.trim().split('\n');
  assert.match(plain[0]!, /^JOBID\s+STATUS\s+DEVICE\s+CREATED\s+BUCKET$/);
  assert.deepEqual(
    plain.slice(1).map((l) => l.split(/\s+/)[0]),
    [...ids].reverse(),
  );
});

test('UPDATE JOB replaces the manifest for the load and keeps the original; only Pending jobs', (t) => {
  const s = setup(t);
  const id = s.create('good/minimal.yaml');
  const r = s.run(['job', 'update', id, manifestFixture('good/full.yaml'), '--no-bucket-check']);
  assert.equal(r.code, 0, r.stderr);
  const st = statusOf(s.run, id);
  assert.equal(st.currentManifest, readFileSync(manifestFixture('good/full.yaml'), 'utf8'));
  assert.equal(st.manifestUpdated, true);
  assert.equal(st.history.at(-1).subject, 'manifest');
  const db = new Database(join(s.dataDir, 'station.db'), { readonly: true });
  const row = db.prepare('SELECT original_manifest FROM jobs WHERE id = ?').get(id) as { original_manifest: Buffer };
  db.close();
  assert.deepEqual(row.original_manifest, readFileSync(manifestFixture('good/minimal.yaml')));

  const bad = s.run(['job', 'update', id, manifestFixture('bad/bad-acl.yaml'), '--no-bucket-check']);
  assert.equal(bad.code, 1);
  assert.equal(errorName(bad), 'InvalidManifestField');
  assert.deepEqual(statusOf(s.run, id), st, 'a refused update changes nothing');

  forceStatus(s.dataDir, id, 'InProgress');
  const late = s.run(['job', 'update', id, manifestFixture('good/minimal.yaml'), '--no-bucket-check']);
  assert.equal(late.code, 1);
  assert.equal(errorName(late), 'UnableToUpdateJobId');
  assert.equal(statusOf(s.run, id).currentManifest, st.currentManifest);
});

test('CANCEL JOB: Pending and InProgress only; canceled, expired and finished jobs are refused by name', (t) => {
  const s = setup(t);
  const pending = s.create();
  const c = s.run(['job', 'cancel', pending]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(statusOf(s.run, pending).jobStatus, 'Canceled');
  const before = statusOf(s.run, pending);
  for (const [args, name] of [
    [['job', 'cancel', pending], 'CanceledJobId'],
    [['job', 'update', pending, manifestFixture('good/minimal.yaml'), '--no-bucket-check'], 'CanceledJobId'],
  ] as const) {
    const r = s.run([...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(errorName(r), name);
  }
  assert.deepEqual(statusOf(s.run, pending), before, 'refusals changed nothing');

  const loading = s.create();
  forceStatus(s.dataDir, loading, 'InProgress');
  const stop = s.run(['job', 'cancel', loading]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /stops once in-flight work is settled/);
  assert.equal(statusOf(s.run, loading).jobStatus, 'Canceled');

  for (const finished of ['Completed', 'CompletedWithErrors', 'MissingSignature', 'InvalidSignature', 'DeviceError'] as const) {
    const id = s.create();
    forceStatus(s.dataDir, id, finished);
    const r = s.run(['job', 'cancel', id]);
    assert.equal(r.code, 1, finished);
    assert.equal(errorName(r), 'UnableToCancelJobId', finished);
    assert.equal(statusOf(s.run, id).jobStatus, finished);
  }
});

test('a job whose device has not arrived 30 days after creation is Expired, and refused by name', (t) => {
  const s = setup(t);
  const old = s.create();
  const arrived = s.create();
  const fresh = s.create();
  assert.equal(s.run(['job', 'received', arrived]).code, 0);
  const db = new Database(join(s.dataDir, 'station.db'));
  const longAgo = Date.now() - 31 * 24 * 3600 * 1000;
  db.prepare('UPDATE jobs SET created_at = ? WHERE id IN (?, ?)').run(longAgo, old, arrived);
  db.close();
  const st = statusOf(s.run, old);
  assert.equal(st.jobStatus, 'Expired');
  assert.equal(st.history.at(-1).from, 'Pending');
  assert.equal(statusOf(s.run, arrived).jobStatus, 'Pending', 'a device at the station stops the clock');
  assert.equal(statusOf(s.run, fresh).jobStatus, 'Pending');
  for (const args of [['job', 'cancel', old], ['job', 'update', old, manifestFixture('good/minimal.yaml'), '--no-bucket-check']]) {
    const r = s.run(args);
    assert.equal(r.code, 1);
    assert.equal(errorName(r), 'ExpiredJobId');
  }
});

test('device status: received, then returned with carrier and tracking; never backwards', (t) => {
  const s = setup(t);
  const id = s.create();
  const early = s.run(['job', 'returned', id, '--carrier', 'UPS', '--tracking', '1Z999']);
  assert.equal(early.code, 1);
  assert.equal(errorName(early), 'InvalidDeviceStatus');
  assert.equal(s.run(['job', 'received', id]).code, 0);
  assert.equal(statusOf(s.run, id).deviceStatus, 'AtAWS');
  const again = s.run(['job', 'received', id]);
  assert.equal(again.code, 1);
  assert.equal(errorName(again), 'InvalidDeviceStatus');
  const usage = s.run(['job', 'returned', id, '--carrier', 'UPS']);
  assert.equal(usage.code, 2);
  const r = s.run(['job', 'returned', id, '--carrier', 'UPS', '--tracking', '1Z999']);
  assert.equal(r.code, 0, r.stderr);
  const st = statusOf(s.run, id);
  assert.equal(st.deviceStatus, 'Returned');
  assert.equal(st.carrier, 'UPS');
  assert.equal(st.trackingNumber, '1Z999');
  assert.deepEqual(
    st.history.filter((h: { subject: string }) => h.subject === 'device').map((h: { from: string; to: string }) => `${h.from}>${h.to}`),
    ['NotReceived>AtAWS', 'AtAWS>Returned'],
  );
  const plain = s.run(['job', 'status', id]).stdout;
  assert.match(plain, /device status\s+Returned \(UPS 1Z999\)/);
  assert.match(plain, /history:\n.*job\s+Pending/);
});

test('the store allows exactly the contract moves of a job status, each recorded in the history', (t) => {
  const s = tempStation(t);
  const store = new JobStore(s.dataDir);
  t.after(() => store.close());
  store.putAccount(ACCESS_KEY_ID, SECRET_KEY);
  const bytes = readFileSync(manifestFixture('good/minimal.yaml'));
  const manifest = parseManifest(bytes);
  const reach: Record<JobStatus, JobStatus[]> = {
    Pending: [],
    InProgress: ['InProgress'],
    Completed: ['InProgress', 'Completed'],
    CompletedWithErrors: ['InProgress', 'CompletedWithErrors'],
    Canceled: ['Canceled'],
    Expired: ['Expired'],
    MissingSignature: ['MissingSignature'],
    InvalidSignature: ['InvalidSignature'],
    DeviceError: ['DeviceError'],
  };
  let allowed = 0;
  for (const from of JOB_STATUSES) {
    for (const to of JOB_STATUSES) {
      const job = store.create(bytes, manifest);
      for (const step of reach[from]) store.moveJob(job.id, step);
      assert.equal(store.get(job.id).jobStatus, from);
      const entries = store.history(job.id).length;
      if (canMoveJob(from, to)) {
        allowed++;
        assert.equal(store.moveJob(job.id, to, 'test').jobStatus, to);
        assert.deepEqual(store.history(job.id).at(-1), { ...store.history(job.id).at(-1), subject: 'job', from, to, note: 'test' });
      } else {
        assert.throws(() => store.moveJob(job.id, to), (e: { code: string }) => e.code === 'InvalidJobStatus', `${from} -> ${to}`);
        assert.equal(store.get(job.id).jobStatus, from);
        assert.equal(store.history(job.id).length, entries, 'a refused move records nothing');
      }
    }
  }
  // Pending: 6 ways out; InProgress: 4; the 7 terminal statuses: none.
  assert.equal(allowed, 10);
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
});
