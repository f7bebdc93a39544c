// SystemdNotifier against a real notification socket: a Unix datagram socket bound by a small Python receiver
// (Node has no AF_UNIX datagrams), standing in for PID 1. The receiver reports each datagram with the sender's
// credentials (SO_PASSCRED), so the tests also see which PID a message is attributed to.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SystemdNotifier } from '../src/daemon/notify.js';

const INSTALL = fileURLToPath(new URL('./s3/install-systemd-tools.sh', import.meta.url));

before(() => {
  execFileSync('bash', [INSTALL], { stdio: ['ignore', 'inherit', 'inherit'] });
});

// Reads datagrams as PID 1 does (recvmsg with credentials). It asks for no SCM_RIGHTS room, so the pipe that
// systemd-notify passes with BARRIER=1 is closed by the kernel on receipt, which ends its wait as PID 1 would.
const RECEIVER = `
import json, os, socket, struct, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
print(json.dumps({"ready": True}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    print(json.dumps({"text": data.decode("utf-8", "replace"), "pid": pid}), flush=True)
`;

interface Datagram {
  fields: Map<string, string>;
  /** the sender's PID as the kernel passed it (SCM_CREDENTIALS) */
  pid: number;
}

interface Receiver {
  socket: string;
  dir: string;
  /** datagrams so far, without systemd-notify's BARRIER=1 handshakes */
  messages: Datagram[];
}

async function receiver(t: TestContext): Promise<Receiver> {
  const dir = mkdtempSync(join(tmpdir(), 'notify-'));
  const socket = join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: Datagram[] = [];
  t.after(() => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the receiver exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: true; text?: string; pid?: number };
      if (m.ready) return resolve();
      const fields = new Map(m.text!.split('\n').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      if (!fields.has('BARRIER')) messages.push({ fields, pid: m.pid! });
    });
  });
  return { socket, dir, messages };
}

/** Waits until the receiver has printed `n` datagrams (systemd-notify returns after PID 1 — here the receiver — read them). */
async function received(r: Receiver, n: number): Promise<Datagram[]> {
  const until = Date.now() + 5000;
  while (r.messages.length < n && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
  return r.messages;
}

/** Whether this process may send with another PID in its credentials (root's CAP_SYS_ADMIN): bit 21 of CapEff. */
function canForgePid(): boolean {
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return eff !== undefined && (BigInt(`0x${eff}`) & (1n << 21n)) !== 0n;
}

/** A stand-in for systemd-notify that records each run's arguments, one line per run, and takes `ms` to finish. */
function fakeNotify(dir: string, ms = 0): { command: string; runs: () => string[][] } {
  const log = join(dir, 'runs.log');
  const command = join(dir, 'fake-systemd-notify');
  writeFileSync(command, `#!/bin/sh\nprintf '%s\\037' "$@" >> '${log}'\necho >> '${log}'\nexec sleep ${ms / 1000}\n`);
  chmodSync(command, 0o755);
  return {
    command,
    runs: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\x1f').filter(Boolean)) : []),
  };
}

test('ready, status, watchdog and stopping reach the socket, with our PID as MAINPID and as the sender', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ ...process.env, NOTIFY_SOCKET: r.socket });
  assert.equal(n.enabled, true);

  assert.deepEqual(await n.ready('idle; 0 drive(s) attached'), { sent: true });
  assert.deepEqual(await n.status('EXAMP: 12 of 40 files'), { sent: true });
  assert.deepEqual(await n.watchdog(), { sent: true });
  assert.deepEqual(await n.extendTimeout(30_000), { sent: true });
  assert.deepEqual(await n.stopping(), { sent: true });

  const got = await received(r, 5);
  assert.equal(got.length, 5, JSON.stringify(got.map((m) => [...m.fields])));
  const [ready, status, watchdog, extend, stopping] = got as [Datagram, Datagram, Datagram, Datagram, Datagram];
  assert.equal(ready.fields.get('READY'), '1');
  assert.equal(ready.fields.get('STATUS'), 'idle; 0 drive(s) attached');
  assert.equal(status.fields.get('STATUS'), 'EXAMP: 12 of 40 files');
  assert.equal(status.fields.has('READY'), false);
  assert.equal(watchdog.fields.get('WATCHDOG'), '1');
  assert.equal(extend.fields.get('EXTEND_TIMEOUT_USEC'), '30000000');
  assert.equal(stopping.fields.get('STOPPING'), '1');
  for (const m of got) assert.equal(m.fields.get('MAINPID'), String(process.pid));
  if (canForgePid()) {
    // What makes the message count for the unit: PID 1 attributes it to the main process it tracks, not to a
    // systemd-notify that may have exited before PID 1 reads the datagram.
    for (const m of got) assert.equal(m.pid, process.pid, 'sent in the name of the daemon (systemd-notify --pid=)');
  } else {
    t.diagnostic('no CAP_SYS_ADMIN: systemd-notify sends under its own PID (the NotifyAccess=all fallback)');
    for (const m of got) assert.notEqual(m.pid, process.pid);
  }
});

test('one systemd-notify at a time: what is asked meanwhile goes in the next one, the latest status winning', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ ...process.env, NOTIFY_SOCKET: r.socket });
  const results = await Promise.all([n.status('first'), n.status('second'), n.watchdog(), n.status('third'), n.ready()]);
  for (const res of results) assert.deepEqual(res, { sent: true });
  const got = await received(r, 2);
  await new Promise((res) => setTimeout(res, 100)); // nothing more arrives
  assert.deepEqual(
    got.map((m) => Object.fromEntries([...m.fields].filter(([k]) => k !== 'MAINPID'))),
    [{ STATUS: 'first' }, { READY: '1', STATUS: 'third', WATCHDOG: '1' }],
  );
});

test('runs never overlap, even when systemd-notify is slow', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fake = fakeNotify(dir, 200);
  const n = new SystemdNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: join(dir, 'unused.sock') }, { command: fake.command });
  const first = n.status('a');
  await new Promise((res) => setTimeout(res, 50)); // the first run is under way
  const rest = [n.status('b'), n.watchdog(), n.status('c'), n.stopping()];
  assert.equal(fake.runs().length, 1, 'the others wait for the first run');
  await Promise.all([first, ...rest]);
  assert.deepEqual(fake.runs(), [
    [`--pid=${process.pid}`, '--status=a'],
    [`--pid=${process.pid}`, '--status=c', '--', 'WATCHDOG=1', 'STOPPING=1'],
  ]);
});

test('without NOTIFY_SOCKET nothing is run and every call resolves at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fake = fakeNotify(dir);
  const n = new SystemdNotifier({ PATH: process.env.PATH }, { command: fake.command });
  assert.equal(n.enabled, false);
  for (const res of await Promise.all([n.ready('x'), n.status('y'), n.watchdog(), n.stopping(), n.extendTimeout(1000)])) {
    assert.deepEqual(res, { sent: false });
  }
  assert.equal(n.watchdogIntervalMs(), undefined);
  assert.deepEqual(fake.runs(), []);
});

test('a missing or failing systemd-notify is reported, never thrown', async (t) => {
  const r = await receiver(t);
  // PATH without systemd-notify
  const noBinary = new SystemdNotifier({ PATH: r.dir, NOTIFY_SOCKET: r.socket });
  const res = await noBinary.ready('x');
  assert.equal(res.sent, false);
  assert.match(res.error ?? '', /systemd-notify: not found/);
  assert.match((await noBinary.watchdog()).error ?? '', /not found/, 'and the next call still runs');

  // a socket nobody listens on: systemd-notify itself fails
  const noListener = new SystemdNotifier({ ...process.env, NOTIFY_SOCKET: join(r.dir, 'absent.sock') });
  const failed = await noListener.status('x');
  assert.equal(failed.sent, false);
  assert.match(failed.error ?? '', /systemd-notify failed \(exit 1\): Failed to notify init system/);

  // a hung notifier is killed
  const fake = fakeNotify(r.dir, 5000);
  const hung = new SystemdNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: r.socket }, { command: fake.command, timeoutMs: 200 });
  assert.match((await hung.watchdog()).error ?? '', /did not finish within 200 ms/);

  // a field systemd could not parse is refused before anything runs
  assert.match((await noBinary.notify({ 'bad name': '1' })).error ?? '', /not a notification field/);
  assert.match((await noBinary.notify({ STATUS: 'two\nlines' })).error ?? '', /not a notification field/);
});

test('a status is sent on one line and cut to 1 KiB', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ ...process.env, NOTIFY_SOCKET: r.socket });
  await n.status('two\nlines\r\nhere');
  await n.status('é'.repeat(2000)); // 4000 bytes of UTF-8
  const [lines, long] = (await received(r, 2)) as [Datagram, Datagram];
  assert.equal(lines.fields.get('STATUS'), 'two lines here');
  const cut = long.fields.get('STATUS')!;
  assert.ok(Buffer.byteLength(cut) <= 1024, `${Buffer.byteLength(cut)} bytes`);
  assert.match(cut, /^é+\.\.\.$/);
});

test('watchdogIntervalMs: half of WATCHDOG_USEC, only for this process', () => {
  const base = { NOTIFY_SOCKET: '/run/systemd/notify' };
  const interval = (env: Record<string, string>) => new SystemdNotifier({ ...base, ...env }).watchdogIntervalMs();
  assert.equal(interval({ WATCHDOG_USEC: '60000000' }), 30_000);
  assert.equal(interval({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: String(process.pid) }), 30_000);
  assert.equal(interval({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: String(process.pid + 1) }), undefined, 'meant for another process');
  assert.equal(interval({ WATCHDOG_USEC: '1500' }), 1);
  assert.equal(interval({}), undefined);
  assert.equal(interval({ WATCHDOG_USEC: '0' }), undefined);
  assert.equal(interval({ WATCHDOG_USEC: 'soon' }), undefined);
  assert.equal(new SystemdNotifier({ WATCHDOG_USEC: '60000000' }).watchdogIntervalMs(), undefined, 'no socket, no watchdog');
});
