import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../src/config.js';
import { JobStore } from '../src/jobs/store.js';
import { CANCEL_SETTLE_MS } from '../src/mail/outbox.js';
import { parseManifest } from '../src/manifest/parse.js';
import { stageIs, startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import { setupLoad, writeDrive, type LoadSetup } from './support/load.js';
import { freePort, startSmtp, type Received } from './support/smtp.js';
import { ACCESS_KEY_ID, SECRET_KEY, manifestFixture, tempStation } from './support/station.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.org';
const FROM = 'station@import.example.com';

/** The config's mail section for a server on loopback; quick retries so a test does not wait a minute. */
function mailConfig(port: number, extra = ''): string {
  return (
    `mail:\n  smtp:\n    host: 127.0.0.1\n    port: ${port}\n${extra}` +
    `  from: "Import station <${FROM}>"\n  retry:\n    firstDelayMs: 200\n    maxDelayMs: 1000\n`
  );
}

interface OutboxRow {
  job_id: string;
  job_status: string;
  recipients: string;
  state: string;
  attempts: number;
  last_error: string | null;
  sent_at: number | null;
  next_attempt_at: number;
  body: string;
}

/** The outbox as it is in the station's database file, read by a connection of the test's own. */
function outbox(setup: { dataDir: string }): OutboxRow[] {
  const db = new Database(join(setup.dataDir, 'station.db'), { readonly: true });
  try {
    return db.prepare('SELECT * FROM outbox ORDER BY id').all() as OutboxRow[];
  } finally {
    db.close();
  }
}

const jobStatus = (setup: LoadSetup) => JSON.parse(setup.run(['job', 'status', setup.jobId, '--json']).stdout);

/** The message told the end of this load: recipients, subject, and the facts of the body. */
function assertEndMail(m: Received, setup: LoadSetup, status: string, facts: RegExp[]): void {
  assert.deepEqual(m.envelopeTo.sort(), [ALICE, BOB].sort(), 'sent to every notificationEmail address');
  assert.equal(m.envelopeFrom, FROM);
  assert.match(m.headers.get('to')!, new RegExp(`${ALICE}.*${BOB}`));
  assert.equal(m.headers.get('subject'), `Import job ${setup.jobId}: ${status}`);
  assert.match(m.text, new RegExp(`^JOBID: ${setup.jobId}$`, 'm'));
  assert.match(m.text, new RegExp(`^Job status: ${status}: `, 'm'));
  for (const f of facts) assert.match(m.text, f);
}

test('a load that ends queues its e-mail in the database; it reaches every notificationEmail address with the counts and the log', async (t) => {
  const smtp = await startSmtp();
  t.after(() => smtp.close());
  const setup = await setupLoad(t, { manifest: `notificationEmail: ${ALICE}; ${BOB}\n`, config: mailConfig(smtp.port) });
  writeDrive(setup.drive, { 'a.txt': 'hello', 'dir/b.bin': Buffer.alloc(3000, 7) });

  const load = setup.run(['load', setup.drive]);
  assert.equal(load.code, 0, load.stderr);
  // `station load` only queues: the message waits in the outbox, in the same file as the job.
  const [queued, ...more] = outbox(setup);
  assert.equal(more.length, 0, 'one message per end');
  assert.equal(queued!.job_id, setup.jobId);
  assert.equal(queued!.job_status, 'Completed');
  assert.equal(queued!.state, 'queued');
  assert.deepEqual(JSON.parse(queued!.recipients), [ALICE, BOB]);
  assert.equal(smtp.received.length, 0, 'nothing sent by the load itself');

  // Asynchronously: the SMTP server runs in this process and must keep answering meanwhile.
  const send = await setup.runAsync(['mail', 'send', '--json']);
  assert.equal(send.code, 0, send.stderr);
  assert.deepEqual(JSON.parse(send.stdout), { sent: 1, failed: 0, undeliverable: 0, queued: 0 });
  const [m] = await smtp.waitFor(1);
  assertEndMail(m!, setup, 'Completed', [
    /^Files stored: 2$/m,
    /^Files not stored: 0$/m,
    /^Bytes stored: 3005 \(2\.9 KiB\)$/m,
    new RegExp(`^Bucket: ${setup.bucket}$`, 'm'),
    new RegExp(`^Log bucket: ${setup.logBucket}$`, 'm'),
    new RegExp(`^Log key: import-log-${setup.jobId}$`, 'm'),
    /^Device status: AtAWS$/m,
  ]);
  assert.doesNotMatch(m!.text, /What to do/, 'nothing to do after a complete load');
  assert.equal(outbox(setup)[0]!.state, 'sent');
  const [listed] = JSON.parse(setup.run(['mail', 'list', '--json']).stdout).messages;
  assert.equal(listed.jobId, setup.jobId);
  assert.equal(listed.state, 'sent');
  assert.equal(listed.attempts, 1);
  assert.deepEqual(listed.recipients, [ALICE, BOB]);
  assert.equal((await setup.runAsync(['mail', 'send'])).code, 0);
  assert.equal(smtp.received.length, 1, 'a sent message is not sent again');
});

test('the SMTP server down: the load is not held up, the daemon retries with back-off, and the mail arrives once the server is up', async (t) => {
  const port = await freePort();
  const password = 'sm7p-Pa55word-never-logged';
  const setup = await setupLoad(t, {
    manifest: `notificationEmail: ${ALICE};${BOB}\n`,
    config: `${mailConfig(port, `    user: station\n    passwordFile: /PASSWORD-PLACEHOLDER\n`)}${watchMedia(false)}`,
  });
  const media = useMediaRoot(setup);
  const passwordFile = join(setup.dir, 'smtp-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  writeFileSync(setup.configFile, readFileSync(setup.configFile, 'utf8').replace('/PASSWORD-PLACEHOLDER', passwordFile));
  writeDrive(setup.drive, { 'a.txt': 'a', 'b.txt': 'bb' });

  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  assert.ok(d.events.some((e) => e.msg === 'notification e-mail on' && e.smtp === `127.0.0.1:${port}`), 'says mail is on, and where to');
  renameSync(setup.drive, join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'done'), 'load done while the SMTP server is down');
  assert.equal(jobStatus(setup).jobStatus, 'Completed');

  // Two failed attempts, each logged with the job named; the message stays queued in the database file.
  const failed = (e: { msg: string; jobId?: string }) => e.jobId === setup.jobId && e.msg.startsWith(`notification e-mail for job ${setup.jobId} not sent`);
  await d.waitFor((e) => failed(e) && e.attempt === 2, 'a second failed attempt');
  const [waiting] = outbox(setup);
  assert.equal(waiting!.state, 'queued');
  assert.ok(waiting!.attempts >= 2, `attempts recorded: ${waiting!.attempts}`);
  assert.match(waiting!.last_error!, /ECONNREFUSED/);

  const smtp = await startSmtp({ port, auth: { user: 'station', pass: password } });
  t.after(() => smtp.close());
  const [m] = await smtp.waitFor(1);
  assertEndMail(m!, setup, 'Completed', [/^Files stored: 2$/m, /^Files not stored: 0$/m, /^Bytes stored: 3$/m, new RegExp(`^Log key: import-log-${setup.jobId}$`, 'm')]);
  assert.equal(m!.user, 'station', 'logged in with the password from mail.smtp.passwordFile');
  await d.waitFor((e) => e.jobId === setup.jobId && e.msg === 'notification e-mail sent', 'sent');
  assert.equal(outbox(setup)[0]!.state, 'sent');
  assert.equal(await d.kill('SIGTERM'), 0);
  assert.equal(smtp.received.length, 1, 'delivered once');
  const logText = JSON.stringify(d.events) + d.stderr;
  assert.ok(!logText.includes(password), 'the SMTP password is never logged');
});

test("a refused drive's e-mail says why nothing was loaded and what to do", async (t) => {
  const smtp = await startSmtp();
  t.after(() => smtp.close());
  const setup = await setupLoad(t, { manifest: `notificationEmail: ${ALICE}; ${BOB}\n`, config: mailConfig(smtp.port) });
  writeDrive(setup.drive, { 'a.txt': 'a' });
  const sigFile = join(setup.drive, 'SIGNATURE');
  writeFileSync(sigFile, readFileSync(sigFile, 'utf8').replace(/signature:.*/, 'signature:AAAAAAAAAAAAAAAAAAAAAAAAAAA='));

  const load = setup.run(['load', setup.drive]);
  assert.equal(load.code, 4, load.stderr);
  assert.equal(outbox(setup)[0]!.job_status, 'InvalidSignature');
  const send = await setup.runAsync(['mail', 'send']);
  assert.equal(send.code, 0, send.stderr);
  const [m] = await smtp.waitFor(1);
  assertEndMail(m!, setup, 'InvalidSignature', [
    /^Job status: InvalidSignature: nothing was loaded: the SIGNATURE file on the device does not match the manifest given at CREATE JOB\.$/m,
    /^Reason: the SIGNATURE does not verify against the manifest given at CREATE JOB$/m,
    /^Files stored: 0$/m,
    /^Import log: none/m,
    /^What to do: .*Create a new job .*SIGNATURE.*ship the device again/m,
  ]);
});

test('without a mail section no e-mail is queued, and the daemon says once that notification e-mail is off', async (t) => {
  const setup = await setupLoad(t, { manifest: `notificationEmail: ${ALICE}\n` });
  writeDrive(setup.drive, { 'a.txt': 'a' });
  assert.equal(setup.run(['load', setup.drive]).code, 0);
  assert.deepEqual(outbox(setup), []);
  assert.equal(setup.run(['mail', 'send']).code, 2, 'mail send without a mail section is a usage error');
  const d = startDaemon(t, setup);
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  assert.equal(d.events.filter((e) => e.msg.startsWith('notification e-mail is off')).length, 1);
  assert.equal(await d.kill('SIGTERM'), 0);
});

test('CANCEL JOB of a running load: its e-mail waits for the load to store the log, then carries the final counts', (t) => {
  const s = tempStation(t);
  let now = 1_000_000;
  const store = new JobStore(s.dataDir, () => now, { mail: true });
  t.after(() => store.close());
  store.putAccount(ACCESS_KEY_ID, SECRET_KEY);
  const bytes = Buffer.from(`${readFileSync(manifestFixture('good/minimal.yaml'), 'utf8')}notificationEmail: ${ALICE}\nlogPrefix: logs/\n`);
  const job = store.create(bytes, parseManifest(bytes));
  store.moveJob(job.id, 'InProgress');
  store.cancel(job.id);
  const [waiting] = outbox(s);
  assert.equal(waiting!.job_status, 'Canceled');
  assert.equal(waiting!.next_attempt_at, now + CANCEL_SETTLE_MS, 'held while the load settles');
  assert.match(waiting!.body, /^\(the load was stopping/m);

  now += 5000;
  store.endLoad(job.id, { logBucket: 'import-demo', logKey: `logs/import-log-${job.id}`, errorCount: 0 });
  const [ready] = outbox(s);
  assert.equal(ready!.next_attempt_at, now, 'due as soon as the log is stored');
  assert.match(ready!.body, new RegExp(`^Log key: logs/import-log-${job.id}$`, 'm'));
  assert.doesNotMatch(ready!.body, /the load was stopping/);
  assert.equal(outbox(s).length, 1, 'still one message');
});

test('mail config: the server and the sender must be named; bad values are refused with the key', (t) => {
  const s = tempStation(t);
  const cases: Array<[string, RegExp]> = [
    ['mail:\n  from: a@example.com\n', /mail\.smtp\.host is required/],
    ['mail:\n  smtp:\n    host: mx\n', /mail\.from is required/],
    ['mail:\n  smtp:\n    host: mx\n  from: not-an-address\n', /mail\.from: expected an e-mail address/],
    ['mail:\n  smtp:\n    host: mx\n    port: 70000\n  from: a@example.com\n', /mail\.smtp\.port: expected a whole number from 1 to 65535/],
    ['mail:\n  smtp:\n    host: mx\n    passwordFile: /etc/pw\n  from: a@example.com\n', /mail\.smtp\.passwordFile is given without mail\.smtp\.user/],
    ['mail:\n  smtp:\n    host: mx\n    user: u\n    passwordFile: pw.txt\n  from: a@example.com\n', /mail\.smtp\.passwordFile: expected an absolute path/],
    ['mail:\n  smtp:\n    host: mx\n    tls: true\n  from: a@example.com\n', /unknown key "mail\.smtp\.tls"/],
    ['mail:\n  smtp:\n    host: mx\n  from: a@example.com\n  retry:\n    firstDelayMs: 5000\n    maxDelayMs: 1000\n', /firstDelayMs \(5000\) is larger than mail\.retry\.maxDelayMs/],
  ];
  for (const [text, message] of cases) {
    const file = join(s.dir, 'bad.yaml');
    writeFileSync(file, text);
    assert.throws(() => loadConfig({ configFile: file, env: {} }), message, text);
  }
  const file = join(s.dir, 'good.yaml');
  writeFileSync(file, 'mail:\n  smtp:\n    host: mx.example.com\n    secure: true\n  from: "Station <s@example.com>"\n');
  assert.deepEqual(loadConfig({ configFile: file, env: {} }).mail, {
    smtp: { host: 'mx.example.com', port: 465, secure: true },
    from: 'Station <s@example.com>',
    retry: { firstDelayMs: 60_000, maxDelayMs: 3_600_000 },
  });
  writeFileSync(file, '');
  assert.equal(loadConfig({ configFile: file, env: {} }).mail, undefined, 'no mail section: mail off');
});

test('the SMTP password is asked for only by what sends mail: a missing one is named there, other commands run', (t) => {
  const s = tempStation(t);
  const missing = join(s.dir, 'no-such-password');
  writeFileSync(s.configFile, `mail:\n  smtp:\n    host: 127.0.0.1\n    user: station\n    passwordFile: ${missing}\n  from: s@example.com\n`);
  assert.equal(s.run(['job', 'list']).code, 0, 'a command that sends nothing needs no password');
  const send = s.run(['mail', 'send']);
  assert.equal(send.code, 2);
  assert.match(send.stderr, new RegExp(`^BadConfig: mail\\.smtp\\.passwordFile: cannot read ${missing}: ENOENT`));
  writeFileSync(s.configFile, `mail:\n  smtp:\n    host: 127.0.0.1\n    user: station\n  from: s@example.com\n`);
  assert.match(s.run(['mail', 'send']).stderr, /^BadConfig: mail\.smtp\.user is given without a password: set STATION_SMTP_PASSWORD/);
});
