import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import { bytes, objectsIn, setupLoad, writeDrive, type LoadSetup } from './support/load.js';
import { errorName } from './support/station.js';

/**
 * Hostile SIGNATURE files, each on its own drive folder of a job of its own, through `station load`: tolerant
 * reading where the contract allows it, a named refusal otherwise, and nothing uploaded on a refusal.
 */

const status = (setup: LoadSetup, id: string) => JSON.parse(setup.run(['job', 'status', id, '--json']).stdout);

/** Another job from the same manifest: its ID and the SIGNATURE text CREATE JOB returned. */
function newJob(setup: LoadSetup): { jobId: string; text: string } {
  const r = setup.run(['job', 'create', join(setup.dir, 'manifest.yaml'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { jobId, signatureFileContents } = JSON.parse(r.stdout);
  return { jobId, text: signatureFileContents };
}

/** A drive folder holding one data file named after the case, and whatever `place` puts at SIGNATURE. */
function drive(setup: LoadSetup, name: string, place: (sigPath: string) => void): string {
  const root = join(setup.dir, `drive-${name}`);
  writeDrive(root, { [`${name}.txt`]: name });
  place(join(root, 'SIGNATURE'));
  return root;
}

const lines = (text: string) => Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));

test('SIGNATURE read tolerantly: CRLF, spaces after colons, lines reordered, blank lines, version 1.0: the drive loads', async (t) => {
  const setup = await setupLoad(t, { signature: false });
  const { jobId, text } = newJob(setup);
  const f = lines(text);
  const variant = `\r\nsignature:   ${f.signature}\r\n\r\njobId: ${f.jobId!.toLowerCase()}\r\nsigningMethod:\tHmacSHA1\r\nversion: 1.0\r\n`;
  const root = drive(setup, 'tolerant', (p) => writeFileSync(p, variant));
  const r = setup.run(['load', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(status(setup, jobId).jobStatus, 'Completed');
  assert.equal((await objectsIn(setup.s3, setup.bucket)).get('tolerant.txt')?.toString(), 'tolerant');
});

interface Case {
  name: string;
  place: (sigPath: string, text: string) => void;
  /** what the refusal says */
  says: RegExp;
  /** the job's status once the load was run with `--job` (default InvalidSignature) */
  jobStatus?: string;
}

/** The good text of the job's SIGNATURE with its `name` line changed (or removed, for undefined). */
const edited = (text: string, name: string, value: string | undefined) =>
  text.split('\n').filter((l) => value !== undefined || !l.startsWith(`${name}:`)).map((l) => (l.startsWith(`${name}:`) ? `${name}:${value}` : l)).join('\n');

const CASES: Case[] = [
  { name: 'no-version', place: (p, text) => writeFileSync(p, edited(text, 'version', undefined)), says: /no version line/ },
  { name: 'no-method', place: (p, text) => writeFileSync(p, edited(text, 'signingMethod', undefined)), says: /no signingMethod line/ },
  { name: 'no-signature', place: (p, text) => writeFileSync(p, edited(text, 'signature', undefined)), says: /no signature line/ },
  { name: 'version-3', place: (p, text) => writeFileSync(p, edited(text, 'version', '3.0')), says: /version 3\.0 is not 1\.0 or 2\.0/ },
  { name: 'sha256', place: (p, text) => writeFileSync(p, edited(text, 'signingMethod', 'HmacSHA256')), says: /signingMethod HmacSHA256 is not HmacSHA1/ },
  { name: 'unknown-line', place: (p, text) => writeFileSync(p, `${text}colour:blue\n`), says: /unknown line "colour"/ },
  { name: 'pasted-twice', place: (p, text) => writeFileSync(p, text + text), says: /appears twice/ },
  { name: 'empty', place: (p) => writeFileSync(p, ''), says: /SIGNATURE is malformed: the file is empty/ },
  // A good SIGNATURE followed by padding: the size alone refuses it, before any of it is read.
  { name: 'huge', place: (p, text) => writeFileSync(p, text + ' '.repeat(200 * 1024)), says: /SIGNATURE is \d+ bytes: a SIGNATURE file is at most 64 KiB/ },
  { name: 'binary', place: (p, text) => writeFileSync(p, Buffer.concat([bytes(3000, 7), Buffer.from(text)])), says: /SIGNATURE is not text \(not valid UTF-8\)/ },
  { name: 'nul-bytes', place: (p, text) => writeFileSync(p, text.replace('jobId', '\0\0jobId')), says: /unknown line "\\x00\\x00jobId"/ },
  { name: 'directory', place: (p) => mkdirSync(p), says: /SIGNATURE is a directory, not a file/ },
  { name: 'fifo', place: (p) => execFileSync('mkfifo', [p]), says: /SIGNATURE is not a regular file/ },
];

test('hostile SIGNATUREs are refused with InvalidSignature and the reason; with --job the job records it; nothing is uploaded', async (t) => {
  const setup = await setupLoad(t, { signature: false });
  for (const c of CASES) {
    const { jobId, text } = newJob(setup);
    const root = drive(setup, c.name, (p) => c.place(p, text));
    const blind = setup.run(['load', root]);
    assert.equal(blind.code, 4, `${c.name}: ${blind.stderr}`);
    assert.equal(errorName(blind), 'InvalidSignature', `${c.name}: ${blind.stderr}`);
    assert.match(blind.stderr, c.says, c.name);
    assert.equal(status(setup, jobId).jobStatus, 'Pending', `${c.name}: without --job no job is touched`);

    const tied = setup.run(['load', root, '--job', jobId]);
    assert.equal(tied.code, 4, `${c.name}: ${tied.stderr}`);
    assert.equal(errorName(tied), 'InvalidSignature', `${c.name}: ${tied.stderr}`);
    assert.match(tied.stderr, c.says, c.name);
    const st = status(setup, jobId);
    assert.equal(st.jobStatus, c.jobStatus ?? 'InvalidSignature', c.name);
    assert.equal(st.deviceStatus, 'AtAWS', c.name);
  }
  assert.equal((await objectsIn(setup.s3, setup.bucket)).size, 0, 'nothing uploaded');
  assert.equal((await objectsIn(setup.s3, setup.logBucket)).size, 0, 'no log stored');
});

test('a SIGNATURE that is a symbolic link is not followed, even to the good SIGNATURE', async (t) => {
  const setup = await setupLoad(t, { signature: false });
  const { jobId, text } = newJob(setup);
  // The link's target is the job's own good SIGNATURE, outside the drive: following it would load the drive.
  const outside = join(setup.dir, 'outside-SIGNATURE');
  writeFileSync(outside, text);
  const root = drive(setup, 'symlink', (p) => symlinkSync(outside, p));
  const r = setup.run(['load', root, '--job', jobId]);
  assert.equal(r.code, 4, r.stderr);
  assert.equal(errorName(r), 'InvalidSignature');
  assert.match(r.stderr, /SIGNATURE is a symbolic link, which the station never follows/);
  assert.equal(status(setup, jobId).jobStatus, 'InvalidSignature');
  assert.equal((await objectsIn(setup.s3, setup.bucket)).size, 0, 'nothing uploaded');
});

test("a second job's SIGNATURE: the job it names is the one checked; with --job of the first, nothing is touched", async (t) => {
  const setup = await setupLoad(t, { signature: false });
  const first = newJob(setup);
  const second = newJob(setup);
  const root = drive(setup, 'second', (p) => writeFileSync(p, second.text));
  const mismatch = setup.run(['load', root, '--job', first.jobId]);
  assert.equal(mismatch.code, 4);
  assert.equal(errorName(mismatch), 'SignatureJobMismatch');
  assert.match(mismatch.stderr, new RegExp(`names job ${second.jobId}, not ${first.jobId}`));
  assert.equal(status(setup, first.jobId).jobStatus, 'Pending');
  assert.equal(status(setup, second.jobId).jobStatus, 'Pending');

  // The second job's SIGNATURE with the first job's ID written in: checked as the first job's, it does not verify.
  writeFileSync(join(root, 'SIGNATURE'), second.text.replace(second.jobId, first.jobId));
  const forged = setup.run(['load', root]);
  assert.equal(errorName(forged), 'InvalidSignature');
  assert.match(forged.stderr, new RegExp(`job ${first.jobId}: the SIGNATURE does not verify`));
  assert.equal(status(setup, first.jobId).jobStatus, 'InvalidSignature');

  writeFileSync(join(root, 'SIGNATURE'), second.text);
  const loaded = setup.run(['load', root]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.equal(status(setup, second.jobId).jobStatus, 'Completed');
  assert.deepEqual([...(await objectsIn(setup.s3, setup.bucket)).keys()], ['second.txt']);
});

test('the daemon refuses drives with a symlinked, a huge and a binary SIGNATURE, saying why in station status', async (t) => {
  const setup = await setupLoad(t, { signature: false, config: watchMedia(false) });
  const media = useMediaRoot(setup);
  const { jobId, text } = newJob(setup);
  const outside = join(setup.dir, 'outside-SIGNATURE');
  writeFileSync(outside, text);
  const drives = {
    linked: drive(setup, 'linked', (p) => symlinkSync(outside, p)),
    huge: drive(setup, 'huge', (p) => writeFileSync(p, text + ' '.repeat(200 * 1024))),
    binary: drive(setup, 'binary', (p) => writeFileSync(p, bytes(5000, 3))),
  };
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  for (const [name, root] of Object.entries(drives)) renameSync(root, join(media, name));
  const refused = (name: string) => d.waitFor((e) => e.stage === 'refused' && typeof e.drive === 'string' && e.drive.endsWith(`/${name}`), `${name} refused`);
  await Promise.all(Object.keys(drives).map(refused));
  const st = JSON.parse((await setup.runAsync(['status', '--json'])).stdout);
  const detail = (name: string) => st.drives.find((x: { drive: string }) => x.drive.endsWith(`/${name}`))?.detail as string;
  assert.match(detail('linked'), /InvalidSignature: .*symbolic link/);
  assert.match(detail('huge'), /InvalidSignature: .*at most 64 KiB/);
  assert.match(detail('binary'), /InvalidSignature: .*not valid UTF-8/);
  assert.equal(status(setup, jobId).jobStatus, 'Pending', 'no SIGNATURE named the job: nothing touched');
  assert.equal((await objectsIn(setup.s3, setup.bucket)).size, 0, 'nothing uploaded');
  assert.equal(await d.kill('SIGTERM'), 0);
});
