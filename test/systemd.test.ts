// The service unit and the example config, checked offline with systemd's own tools (systemd is not PID 1 here).
// `systemd-analyze verify` exits 0 on unknown keys and bad values and only prints warnings: any output fails.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR, loadConfig } from '../src/config.js';

const UNIT = fileURLToPath(new URL('../systemd/import-station.service', import.meta.url));
const EXAMPLE_CONFIG = fileURLToPath(new URL('../systemd/config.example.yaml', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/station/main.js', import.meta.url));
const INSTALL = fileURLToPath(new URL('./s3/install-systemd-tools.sh', import.meta.url));
const EXEC_START = '/usr/local/bin/station daemon';

before(() => {
  execFileSync('bash', [INSTALL], { stdio: ['ignore', 'inherit', 'inherit'] });
});

/** `[Section] Key=value` lines of a unit file, in order (no line continuations are used in ours). */
function unitSettings(text: string): Array<{ section: string; key: string; value: string }> {
  const out: Array<{ section: string; key: string; value: string }> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    assert.ok(!line.endsWith('\\'), `no line continuations: ${line}`);
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a setting: ${line}`);
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

const unitText = () => readFileSync(UNIT, 'utf8');

function service(key: string): string[] {
  return unitSettings(unitText())
    .filter((s) => s.section === 'Service' && s.key === key)
    .map((s) => s.value);
}

/** systemd's quoting for one ExecStart= word. */
function quote(word: string): string {
  return /^[\w/.+:@-]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * The unit as an installed station would have it, but runnable here: ExecStart= names /usr/local/bin/station,
 * which does not exist on this machine, and verify checks that the program exists. The copy runs the built CLI
 * with this Node instead, which is what that link points at on a station.
 */
function runnableCopy(t: TestContext, extra = ''): string {
  assert.ok(existsSync(MAIN), `${MAIN} is missing: build first (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const text = unitText();
  assert.equal(service('ExecStart').join('\n'), EXEC_START);
  const copy = text.replace(`ExecStart=${EXEC_START}`, `ExecStart=${[process.execPath, MAIN, 'daemon'].map(quote).join(' ')}`) + extra;
  const file = join(dir, basename(UNIT)); // the same unit name
  writeFileSync(file, copy);
  return file;
}

function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: 'cat' } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('systemd-analyze verify accepts the unit without a single warning', (t) => {
  const r = analyze(['verify', runnableCopy(t)]);
  assert.equal(r.stdout + r.stderr, '', 'systemd-analyze verify printed something');
  assert.equal(r.status, 0);
});

test('the verify check would see a mistake (it exits 0 on unknown keys and bad values)', (t) => {
  const r = analyze(['verify', runnableCopy(t, '\n[Service]\nWatchdogSecs=60s\nRestart=sometimes\n')]);
  assert.match(r.stderr, /Unknown key 'WatchdogSecs'/);
  assert.match(r.stderr, /restart specifier.*sometimes/);
});

test('the command in ExecStart exists: station daemon', () => {
  const r = spawnSync(process.execPath, [MAIN, 'daemon', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /daemon/);
});

test('the unit has the settings the daemon relies on', () => {
  const one = (key: string) => {
    const values = service(key);
    assert.equal(values.length, 1, `${key}= once in [Service]: ${JSON.stringify(values)}`);
    return values[0]!;
  };
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'all', 'notify.ts sends through a child process (systemd-notify)');
  assert.equal(one('ExecStart'), EXEC_START);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('RestartSec'), '5s');
  assert.equal(one('WatchdogSec'), '60s');
  assert.equal(one('KillMode'), 'mixed', 'SIGTERM to the daemon only: its FUSE helpers serve the drives it still reads');
  assert.match(one('TimeoutStopSec'), /^\d+s$/);
  assert.ok(Number(one('TimeoutStopSec').slice(0, -1)) >= 90, 'the daemon waits up to 60 s for requests in flight, then unmounts');
  assert.equal(one('StateDirectory'), basename(DEFAULT_DATA_DIR), 'the default dataDir is the state directory');
  assert.equal(`/var/lib/${one('StateDirectory')}`, DEFAULT_DATA_DIR);
  assert.equal(one('StateDirectoryMode'), '0700');
  assert.equal(one('ConfigurationDirectory'), 'import-station');
  assert.equal(one('Environment'), `STATION_CONFIG=${DEFAULT_CONFIG_FILE}`);
  assert.equal(one('UMask'), '0077');
  assert.equal(one('PrivateDevices'), 'no', 'drives arrive while the daemon runs');
  assert.deepEqual(one('CapabilityBoundingSet').split(/\s+/).sort(), ['CAP_DAC_READ_SEARCH', 'CAP_SETGID', 'CAP_SYS_ADMIN']);
  assert.deepEqual(service('MemoryDenyWriteExecute'), [], 'MemoryDenyWriteExecute=yes crashes V8');
  assert.deepEqual(service('User'), [], 'mounting needs root (docs/install.md)');
  for (const key of ['DevicePolicy', 'DeviceAllow', 'SystemCallFilter']) assert.deepEqual(service(key), [], `no ${key}=`);
});

test('no device allow-list, not even an implied one: hot-plugged drives must stay reachable', (t) => {
  // ProtectClock= implies DeviceAllow=char-rtc in some systemd versions, and any allow-list denies the rest.
  const r = analyze(['security', '--offline=yes', runnableCopy(t)]);
  const line = r.stdout.split('\n').find((l) => /\bDeviceAllow=/.test(l));
  assert.ok(line, r.stdout + r.stderr);
  assert.match(line, /Service has no device ACL/);
});

test('the example config is valid and spells out the defaults', () => {
  const example = loadConfig({ configFile: EXAMPLE_CONFIG, env: {} });
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  try {
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, '');
    const defaults = loadConfig({ configFile: empty, env: {} });
    const strip = (c: ReturnType<typeof loadConfig>) => ({ ...c, file: undefined, s3: { ...c.s3, configured: undefined } });
    assert.deepEqual(strip(example), strip(defaults));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const text = readFileSync(EXAMPLE_CONFIG, 'utf8');
  for (const key of ['endpoint', 'forcePathStyle', 'requestChecksumCalculation', 'responseChecksumValidation']) {
    assert.match(text, new RegExp(`^\\s*# ${key}: `, 'm'), `${key} is shown (commented out: its default depends on the endpoint)`);
  }
});
