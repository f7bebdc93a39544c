import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { DaemonProcess, stageIs } from './support/daemon.js';
import { MiB, bytes, logFromBucket, setupLoad, writeDrive } from './support/load.js';
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

/**
 * The TCP sockets listening in this network namespace (`/proc/net/tcp*`, state 0A): inode → local address
 * (`127.0.0.1:8470`; IPv6 as the kernel's hex).
 */
function listeningTcp(): Map<string, string> {
  const sockets = new Map<string, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A') continue;
      const [ip, port] = cols[1]!.split(':') as [string, string];
      const v4 = ip.length === 8 ? Buffer.from(ip, 'hex').reverse().join('.') : ip; // little-endian on x86
      sockets.set(cols[9]!, `${v4}:${parseInt(port, 16)}`);
    }
  }
  return sockets;
}

/** The socket inodes a process holds open. */
function socketInodesOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .map((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1])
    .filter((inode): inode is string => inode !== undefined);
}

test('a whole daemon load: no secret in its logs, status answers, import logs or any file outside the data directory; the status service is a private Unix socket', async (t) => {
  const setup = await setupLoad(t, { config: 'drives:\n  mountRoots: [/MEDIA-PLACEHOLDER]\n  pollIntervalMs: 200\n  autoMount: false\n' });
  const media = join(setup.dir, 'media');
  mkdirSync(media);
  writeFileSync(setup.configFile, readFileSync(setup.configFile, 'utf8').replace('/MEDIA-PLACEHOLDER', media));
  writeDrive(setup.drive, { 'a.txt': 'a', 'dir/b.bin': bytes(6 * MiB, 2), 'bad-link': Buffer.from('') });
  rmSync(join(setup.drive, 'bad-link'));
  symlinkSync('/etc/passwd', join(setup.drive, 'bad-link'));
  // Each secret, and the forms an encoder might turn it into on its way to a log.
  const secrets = [SECRET_KEY, setup.s3.secretAccessKey].flatMap((s) => [s, Buffer.from(s).toString('base64'), Buffer.from(s).toString('hex'), encodeURIComponent(s)]);
  const found = (where: string, text: string | Buffer) => {
    for (const s of secrets) assert.ok(!text.includes(s), `a secret (${s.slice(0, 4)}…) appears in ${where}`);
  };

  const d = new DaemonProcess(setup);
  t.after(async () => {
    if (d.child.exitCode === null) await d.kill('SIGKILL');
  });
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  renameSync(setup.drive, join(media, 'drive1'));
  await d.waitFor(stageIs(setup.jobId, 'done'), 'done');

  // The status service: a Unix socket only the station's user may use, in a folder only it may enter.
  const sock = join(setup.dataDir, 'run', 'station.sock');
  assert.ok(lstatSync(sock).isSocket(), `${sock} is a Unix socket`);
  assert.equal(lstatSync(sock).mode & 0o077, 0, 'the socket is not open to group or others');
  assert.equal(statSync(join(setup.dataDir, 'run')).mode & 0o777, 0o700);
  // Its one TCP listener is the station screen's, on loopback (test/screen.test.ts searches what it serves).
  const screen = new URL(String((await d.waitFor((e) => e.msg === 'station screen', 'screen')).url));
  const listening = listeningTcp();
  const daemonSockets = socketInodesOf(d.child.pid!);
  assert.ok(daemonSockets.length > 0, 'the daemon holds sockets (its status socket at least)');
  assert.deepEqual(
    daemonSockets.filter((i) => listening.has(i)).map((i) => listening.get(i)),
    [`127.0.0.1:${screen.port}`],
    'the daemon listens on TCP only for the station screen, on loopback',
  );

  const statusJson = await setup.runAsync(['status', '--json']);
  const statusText = await setup.runAsync(['status']);
  assert.equal(JSON.parse(statusJson.stdout).drives[0].stage, 'done');
  assert.match(statusText.stdout, /safe to unplug/);
  const commands = [
    statusJson,
    statusText,
    await setup.runAsync(['job', 'status', setup.jobId, '--json']),
    await setup.runAsync(['job', 'status', setup.jobId]),
    await setup.runAsync(['job', 'list']),
    await setup.runAsync(['account', 'list', '--json']),
  ];
  assert.equal(await d.kill('SIGTERM'), 0);
  for (const r of commands) found(`a command's output: ${r.stdout}${r.stderr}`, r.stdout + r.stderr);
  assert.ok(d.events.length > 5, 'the daemon logged');
  found('the daemon log', d.events.map((e) => JSON.stringify(e)).join('\n') + d.stderr);

  const { text, rows } = await logFromBucket(setup);
  assert.ok(rows.some((r) => r.File === 'dir/b.bin' && r.Code === 'OK'), 'the load ran');
  found('the import log in the bucket', text);
  const localLogs = filesUnder(setup.dataDir).filter((f) => f.includes(`import-log-${setup.jobId}`));
  assert.equal(localLogs.length, 1, 'the local copy of the import log');
  found('the local import log', readFileSync(localLogs[0]!));

  for (const file of filesUnder(setup.dir)) {
    if (!relative(setup.dataDir, file).startsWith('..')) continue;
    found(file, readFileSync(file));
  }
  assert.ok(readFileSync(join(setup.dataDir, 'station.db')).includes(SECRET_KEY), 'the account secret is kept in the data directory');
  assert.equal(statSync(setup.dataDir).mode & 0o777, 0o700, 'the data directory is 0700');
  const dataFiles = readdirSync(setup.dataDir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name));
  assert.ok(dataFiles.some((f) => f.endsWith('station.db-wal') || f.endsWith('station.db')), 'the database is there');
  for (const file of dataFiles) assert.equal(lstatSync(file).mode & 0o077, 0, `${file} is not open to group or others`);
});
