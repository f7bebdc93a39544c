// The `screen:` config section: defaults, the listen address, refusals naming the key.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { errorName, tempStation } from './support/station.js';

function load(dir: string, text: string) {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return loadConfig({ configFile: file, env: {} });
}

test('screen: on by default, on loopback port 8470, without file names', (t) => {
  const s = tempStation(t);
  assert.deepEqual(load(s.dir, '').screen, { enabled: true, host: '127.0.0.1', port: 8470, loopback: true, showFileNames: false });
});

test('screen.listen: IPv4, IPv6 in brackets, localhost, port 0; loopback or not', (t) => {
  const s = tempStation(t);
  const listen = (v: string) => {
    const { host, port, loopback } = load(s.dir, `screen:\n  listen: "${v}"\n`).screen;
    return { host, port, loopback };
  };
  assert.deepEqual(listen('127.0.0.1:0'), { host: '127.0.0.1', port: 0, loopback: true });
  assert.deepEqual(listen('127.8.9.10:8080'), { host: '127.8.9.10', port: 8080, loopback: true });
  assert.deepEqual(listen('[::1]:8470'), { host: '::1', port: 8470, loopback: true });
  assert.deepEqual(listen('localhost:8470'), { host: 'localhost', port: 8470, loopback: true });
  assert.deepEqual(listen('0.0.0.0:8470'), { host: '0.0.0.0', port: 8470, loopback: false }, 'allowed, set explicitly; the daemon warns');
  assert.deepEqual(listen('[::]:8470'), { host: '::', port: 8470, loopback: false });
  assert.deepEqual(listen('192.168.1.20:80'), { host: '192.168.1.20', port: 80, loopback: false });
  const off = load(s.dir, 'screen:\n  enabled: false\n  showFileNames: true\n').screen;
  assert.equal(off.enabled, false);
  assert.equal(off.showFileNames, true);
});

test('screen: bad values are refused with the key named, exit 2 from the CLI', (t) => {
  const s = tempStation(t);
  const cases: Array<[string, RegExp]> = [
    ['screen:\n  listen: 127.0.0.1\n', /screen\.listen: expected HOST:PORT/],
    ['screen:\n  listen: 8470\n', /screen\.listen: expected HOST:PORT/],
    ['screen:\n  listen: station.example.com:8470\n', /screen\.listen: "station\.example\.com" is not an IP address or localhost/],
    ['screen:\n  listen: 127.0.0.1:65536\n', /screen\.listen: port 65536 is over 65535/],
    ['screen:\n  listen: "::1:8470"\n', /screen\.listen: expected HOST:PORT/],
    ['screen:\n  listen: "[127.0.0.1]:8470"\n', /screen\.listen: "\[127\.0\.0\.1\]" is not an IPv6 address/],
    ['screen:\n  listen: "999.1.1.1:80"\n', /screen\.listen: "999\.1\.1\.1" is not an IP address/],
    ['screen:\n  enabled: yes\n', /screen\.enabled: expected true or false/],
    ['screen:\n  showFilenames: true\n', /unknown key "screen\.showFilenames" \(known here: screen\.enabled, screen\.listen, screen\.showFileNames\)/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => load(s.dir, text), message, text);
  }
  writeFileSync(s.configFile, 'screen:\n  listen: nowhere\n');
  const r = s.run(['daemon']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(errorName(r), 'BadConfig');
  assert.match(r.stderr, /screen\.listen/);
});
