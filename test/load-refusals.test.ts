import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { objectsIn, setupLoad, writeDrive, type LoadSetup } from './support/load.js';
import { errorName } from './support/station.js';

const status = (setup: LoadSetup, id = setup.jobId) => JSON.parse(setup.run(['job', 'status', id, '--json']).stdout);

/** UPDATE JOB with the job's manifest plus `extra` lines; returns the new manifest's file. */
function updateJob(setup: LoadSetup, extra: string): string {
  const updated = join(setup.dir, 'updated.yaml');
  writeFileSync(updated, `${readFileSync(join(setup.dir, 'manifest.yaml'), 'utf8')}${extra}`);
  assert.equal(setup.run(['job', 'update', setup.jobId, updated]).code, 0);
  return updated;
}

async function assertNothingUploaded(setup: LoadSetup): Promise<void> {
  assert.equal((await objectsIn(setup.s3, setup.bucket)).size, 0, 'nothing uploaded');
  assert.equal((await objectsIn(setup.s3, setup.logBucket)).size, 0, 'no log stored');
}

test('no SIGNATURE: without --job nothing is touched; with --job the job becomes MissingSignature', async (t) => {
  const setup = await setupLoad(t, { signature: false });
  writeDrive(setup.drive, { 'a.txt': 'a' });
  const before = status(setup);
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 4);
  assert.equal(errorName(r), 'MissingSignature');
  assert.match(r.stderr, /no SIGNATURE file at the root of the device.*--job JOBID/);
  assert.deepEqual(status(setup), before, 'no job touched');

  const tied = setup.run(['load', setup.drive, '--job', setup.jobId.toLowerCase()]);
  assert.equal(tied.code, 4);
  assert.equal(errorName(tied), 'MissingSignature');
  const after = status(setup);
  assert.equal(after.jobStatus, 'MissingSignature');
  assert.equal(after.deviceStatus, 'AtAWS');
  await assertNothingUploaded(setup);
});

test('a wrong SIGNATURE makes the job InvalidSignature and uploads nothing', async (t) => {
  const setup = await setupLoad(t);
  writeDrive(setup.drive, { 'a.txt': 'a' });
  const sigFile = join(setup.drive, 'SIGNATURE');
  const good = readFileSync(sigFile, 'utf8');
  const sig = /signature:(.*)/.exec(good)![1]!;
  const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
  writeFileSync(sigFile, good.replace(sig, flipped).replaceAll('\n', '\r\n'));
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 4);
  assert.equal(errorName(r), 'InvalidSignature');
  assert.match(r.stderr, /does not verify against the manifest given at CREATE JOB/);
  const st = status(setup);
  assert.equal(st.jobStatus, 'InvalidSignature');
  assert.equal(st.deviceStatus, 'AtAWS');
  await assertNothingUploaded(setup);
  const again = setup.run(['load', setup.drive]);
  assert.equal(again.code, 4);
  assert.equal(errorName(again), 'JobNotLoadable');
});

test('a SIGNATURE for an updated manifest is refused: the original manifest authenticates', async (t) => {
  const setup = await setupLoad(t);
  writeDrive(setup.drive, { 'a.txt': 'a' });
  const updated = updateJob(setup, 'prefix: new/\n');
  const resigned = setup.run(['sign', '--manifest', updated, '--job-id', setup.jobId]);
  writeFileSync(join(setup.drive, 'SIGNATURE'), resigned.stdout);
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 4);
  assert.equal(errorName(r), 'InvalidSignature');
  await assertNothingUploaded(setup);
});

test('UPDATE JOB: the original SIGNATURE loads with the updated manifest', async (t) => {
  const setup = await setupLoad(t);
  writeDrive(setup.drive, { 'a.txt': 'a' });
  updateJob(setup, 'prefix: new/\n');
  const r = setup.run(['load', setup.drive]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...(await objectsIn(setup.s3, setup.bucket)).keys()], ['new/a.txt']);
});

test('an unknown job, a SIGNATURE naming another job, a canceled job, a missing mount point', async (t) => {
  const setup = await setupLoad(t);
  writeDrive(setup.drive, { 'a.txt': 'a' });
  const sigFile = join(setup.drive, 'SIGNATURE');
  const good = readFileSync(sigFile, 'utf8');
  const other = setup.jobId === 'ZZZZZ' ? 'YYYYY' : 'ZZZZZ';

  writeFileSync(sigFile, good.replace(`jobId:${setup.jobId}`, `jobId:${other}`));
  const unknown = setup.run(['load', setup.drive]);
  assert.equal(unknown.code, 4);
  assert.equal(errorName(unknown), 'InvalidJobId');
  assert.match(unknown.stderr, new RegExp(`job ${other} .*not on this station`));
  assert.equal(status(setup).jobStatus, 'Pending', 'no job touched');
  assert.equal(status(setup).deviceStatus, 'NotReceived');

  writeFileSync(sigFile, good);
  const mismatch = setup.run(['load', setup.drive, '--job', other]);
  assert.equal(mismatch.code, 4);
  assert.equal(errorName(mismatch), 'SignatureJobMismatch');
  assert.equal(status(setup).jobStatus, 'Pending');

  const gone = setup.run(['load', join(setup.dir, 'no-such-mount')]);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /no such directory/);

  assert.equal(setup.run(['job', 'cancel', setup.jobId]).code, 0);
  const canceled = setup.run(['load', setup.drive]);
  assert.equal(canceled.code, 4);
  assert.equal(errorName(canceled), 'JobNotLoadable');
  assert.match(canceled.stderr, /is Canceled/);
  await assertNothingUploaded(setup);
  rmSync(sigFile);
});
