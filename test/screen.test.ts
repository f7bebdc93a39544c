// The station screen in a real browser (Debian's chromium, driven by playwright-core) against a daemon loading a
// real drive into radosgw, and the Prometheus metrics after a load. Screenshots go to test/artifacts/ (git-ignored).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { stageIs, startDaemon, useMediaRoot, watchMedia } from './support/daemon.js';
import type { FaultProxy } from './support/fault-proxy.js';
import { MiB, bytes, setupLoad, setupLoadViaProxy, writeDrive, type LoadSetup } from './support/load.js';
import { SECRET_KEY } from './support/station.js';

/** The little of the DOM the functions run in the page use (the tests are type-checked without the DOM library). */
interface PageElement {
  getAttribute(name: string): string | null;
  textContent: string | null;
  querySelector(selector: string): PageElement | null;
}
declare const document: { querySelector(selector: string): PageElement | null };

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const INSTALL = fileURLToPath(new URL('./s3/install-browser.sh', import.meta.url));

before(() => {
  execFileSync('bash', [INSTALL], { stdio: ['ignore', 'inherit', 'inherit'] });
  mkdirSync(ARTIFACTS, { recursive: true });
});

/** A station whose daemon watches `media/` and serves its screen on a free loopback port. */
async function screenSetup(t: Parameters<typeof setupLoad>[0], screen: string, withProxy: boolean) {
  const options = {
    upload: '  maxRequests: 2\n',
    config: `${watchMedia(false)}screen:\n  listen: 127.0.0.1:0\n${screen}`,
  };
  const setup: LoadSetup & { proxy?: FaultProxy } = withProxy ? await setupLoadViaProxy(t, options) : await setupLoad(t, options);
  const { proxy } = setup;
  const media = useMediaRoot(setup);
  const d = startDaemon(t, setup);
  const screenEvent = await d.waitFor((e) => e.msg === 'station screen', 'the screen listening');
  await d.waitFor((e) => e.msg === 'station ready', 'ready');
  return { setup, media, proxy, daemon: d, url: String(screenEvent.url) };
}

/** A second job of the same account, its drive's SIGNATURE made wrong (one character of the signature changed). */
async function driveWithWrongSignature(setup: LoadSetup): Promise<{ jobId: string; drive: string }> {
  const drive = join(setup.dir, 'wrong-signature');
  mkdirSync(drive);
  const sig = join(drive, 'SIGNATURE');
  const created = await setup.runAsync(['job', 'create', join(setup.dir, 'manifest.yaml'), '--signature-out', sig, '--json']);
  assert.equal(created.code, 0, created.stderr);
  const text = readFileSync(sig, 'utf8');
  const tampered = text.replace(/^(signature:.*)(.)$/m, (_, head: string, last: string) => head + (last === 'A' ? 'B' : 'A'));
  assert.notEqual(tampered, text);
  writeFileSync(sig, tampered);
  writeDrive(drive, { 'a.txt': 'not loaded' });
  return { jobId: JSON.parse(created.stdout).jobId as string, drive };
}

/** The bytes bar's value on the card of a job, or -1 while there is none. */
const barValue = (page: Page, jobId: string) =>
  page.evaluate((id) => {
    const bar = document.querySelector(`article.card[data-job="${id}"] .bar.bytes`);
    return bar ? Number(bar.getAttribute('aria-valuenow')) : -1;
  }, jobId);

test('the station screen in a browser: the card appears, its bar moves, "safe to unplug" at the end; a refused drive shows why', async (t) => {
  const { setup, media, proxy, daemon, url } = await screenSetup(t, '  showFileNames: true\n', true);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`photos/img-${String(i).padStart(2, '0')}.jpg`] = bytes(96 * 1024 + i, i);
  writeDrive(setup.drive, files);
  const totalBytes = Object.values(files).reduce((n, b) => n + b.length, 0);
  // Slow S3 down so the load is seen half-way.
  proxy!.addRule({ match: (r) => r.method === 'PUT', fault: { kind: 'delay', ms: 400 }, times: 1000 });
  const wrong = await driveWithWrongSignature(setup);

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  await page.goto(url);
  await page.locator('#no-drives').waitFor({ state: 'visible' });

  renameSync(setup.drive, join(media, 'drive1'));
  const card = page.locator(`article.card[data-job="${setup.jobId}"]`);
  await page.locator(`article.card[data-job="${setup.jobId}"][data-stage="loading"]`).waitFor({ timeout: 60_000 });
  assert.match(await card.locator('.state').innerText(), /^Loading$/i);
  assert.match(await card.locator('.job').innerText(), new RegExp(`Job ${setup.jobId}`));

  // The bar moves: a value part-way, then a larger one. Each read is one look at the page (the load goes on
  // between two calls): the bar with the rate and ETA beside it.
  const midway = (await (
    await page.waitForFunction(
      ([id, above]) => {
        const card = document.querySelector(`article.card[data-job="${id}"]`);
        const bar = card?.querySelector('.bar.bytes');
        const v = Number(bar?.getAttribute('aria-valuenow'));
        const max = Number(bar?.getAttribute('aria-valuemax'));
        if (!(v > Number(above) && v < max)) return false;
        return { v, max, rate: card?.querySelector('.rate')?.textContent ?? '', eta: card?.querySelector('.eta')?.textContent ?? '' };
      },
      [setup.jobId, 0] as const,
      { timeout: 60_000, polling: 50 },
    )
  ).jsonValue()) as { v: number; max: number; rate: string; eta: string };
  assert.equal(midway.max, totalBytes, "the bar's end is the drive's bytes");
  assert.match(midway.rate, /^\d+(\.\d)? (B|KiB|MiB|GiB)\/s$/);
  assert.match(midway.eta, /^ETA (\d+:\d\d|--:--)/);
  const later = await (
    await page.waitForFunction(([id, above]) => {
      const v = Number(document.querySelector(`article.card[data-job="${id}"] .bar.bytes`)?.getAttribute('aria-valuenow'));
      return v > Number(above) ? v : false;
    }, [setup.jobId, midway.v] as const, { timeout: 60_000, polling: 50 })
  ).jsonValue();
  assert.ok(midway.v > 0 && Number(later) > midway.v && Number(later) <= totalBytes, `the bar moved: ${midway.v} then ${later} of ${totalBytes}`);

  // A drive whose SIGNATURE does not match its job, plugged in beside: refused, with the reason.
  renameSync(wrong.drive, join(media, 'drive2'));
  const refused = page.locator(`article.card[data-job="${wrong.jobId}"][data-stage="refused"]`);
  await refused.waitFor({ timeout: 60_000 });
  assert.equal(await refused.locator('.state').innerText(), 'Refused — set aside');
  assert.match(await refused.locator('.detail').innerText(), /^InvalidSignature: /);
  assert.equal(await refused.locator('.bar').count(), 0, 'a refused drive has no progress bar');
  await page.screenshot({ path: join(ARTIFACTS, 'screen-loading-and-refused.png') });

  await page.locator(`article.card[data-job="${setup.jobId}"][data-stage="done"]`).waitFor({ timeout: 120_000 });
  await daemon.waitFor(stageIs(setup.jobId, 'done'), 'done');
  assert.equal(await card.locator('.state').innerText(), 'Done — safe to unplug');
  assert.match(await card.locator('.detail').innerText(), new RegExp(`job ${setup.jobId} Completed: safe to unplug`));
  assert.equal(await barValue(page, setup.jobId), totalBytes, 'the bar is full');
  // showFileNames: true, so the card names the file done last.
  assert.match(await card.locator('.file').innerText(), /^Last file: photos\/img-\d\d\.jpg$/);
  assert.equal(await card.locator('.bar.files').getAttribute('aria-valuenow'), String(Object.keys(files).length + 1), 'every file, and the SIGNATURE row');
  // The recent jobs: the loaded one with its log, the refused one with its status.
  const row = page.locator(`#jobs tr[data-job="${setup.jobId}"]`);
  await page.waitForFunction((id) => document.querySelector(`#jobs tr[data-job="${id}"] .log`)?.textContent !== '', setup.jobId);
  assert.equal(await row.locator('.status').innerText(), 'Completed');
  assert.equal(await row.locator('.log').innerText(), `${setup.logBucket}/import-log-${setup.jobId}`);
  assert.equal(await page.locator(`#jobs tr[data-job="${wrong.jobId}"] .status`).innerText(), 'InvalidSignature');
  await page.screenshot({ path: join(ARTIFACTS, 'screen-done.png') });

  // Unplugged: the card goes.
  renameSync(join(media, 'drive1'), join(setup.dir, 'unplugged'));
  await card.waitFor({ state: 'detached', timeout: 30_000 });
  // Everything the page loaded came from the daemon.
  const origin = new URL(url).origin;
  assert.ok(requested.length >= 3);
  for (const r of requested) assert.equal(new URL(r).origin, origin, `${r} is not served by the station`);
  assert.equal(await daemon.kill('SIGTERM'), 0);
});

/** GET over plain HTTP, with an optional Host header; the whole body. */
function get(url: string, host?: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The server-sent events of the screen, collected as they come, until closed. */
function follow(url: string): { text: () => string; close: () => void } {
  let text = '';
  const req = request(new URL('events', url), (res) => res.setEncoding('utf8').on('data', (d: string) => (text += d)));
  req.on('error', () => {});
  req.end();
  return { text: () => text, close: () => req.destroy() };
}

/** One sample's value from the Prometheus text: `name{labels} value`. */
function sample(metrics: string, name: string, labels = ''): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('/metrics after a load: files and bytes as on the drive, no errors, nothing left in flight; no secret and no file name reaches the screen', async (t) => {
  const { setup, media, daemon, url } = await screenSetup(t, '', false);
  const MARKER = 'customer-content-7f3a9c';
  const files: Record<string, Buffer> = { 'private-ledger-qz81/big-ledger.bin': Buffer.concat([Buffer.from(MARKER), bytes(7 * MiB, 3)]) };
  for (let i = 0; i < 9; i++) files[`private-ledger-qz81/note-${i}.txt`] = Buffer.from(`${MARKER} ${'x'.repeat(1000 + i)}`);
  writeDrive(setup.drive, files);
  const totalBytes = Object.values(files).reduce((n, b) => n + b.length, 0);

  const events = follow(url);
  t.after(() => events.close());
  renameSync(setup.drive, join(media, 'drive1'));
  await daemon.waitFor(stageIs(setup.jobId, 'done'), 'done', 120_000);
  for (let i = 0; i < 100 && !events.text().includes('"stage":"done"'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(events.text(), /"stage":"done"/);

  const metrics = await get(new URL('metrics', url).href);
  assert.equal(metrics.status, 200);
  assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
  const m = metrics.body;
  assert.equal(sample(m, 'station_uploaded_files_total'), Object.keys(files).length);
  assert.equal(sample(m, 'station_uploaded_bytes_total'), totalBytes);
  assert.ok(!m.split('\n').some((l) => l.startsWith('station_file_errors_total{')), 'no file error counted');
  assert.equal(sample(m, 'station_jobs', 'status="Completed"'), 1);
  assert.equal(sample(m, 'station_drives_attached', 'stage="done"'), 1);
  assert.equal(sample(m, 'station_s3_requests_in_flight'), 0);
  assert.equal(sample(m, 'station_memory_buffered_bytes'), 0, 'every part buffer given back');
  assert.equal(sample(m, 'station_memory_budget_bytes'), loadConfig({ configFile: setup.configFile, env: {} }).upload.memoryBytes);
  // 7 MiB in 5 MiB parts: two parts, one completion; nine single PUTs and the import log's.
  assert.equal(sample(m, 'station_s3_request_duration_seconds_count', 'operation="UploadPart",outcome="ok"'), 2);
  assert.equal(sample(m, 'station_s3_request_duration_seconds_count', 'operation="CompleteMultipartUpload",outcome="ok"'), 1);
  assert.equal(sample(m, 'station_s3_request_duration_seconds_count', 'operation="PutObject",outcome="ok"'), 9 + 1);
  assert.ok(sample(m, 'process_resident_memory_bytes')! > 0);

  // Everything the screen's listener serves, searched for the secrets, the file names and the files' content.
  const bodies: Array<[string, string]> = [['events', events.text()], ['metrics', m]];
  for (const path of ['', 'app.js', 'style.css', 'api/snapshot', 'api/status']) {
    const r = await get(new URL(path, url).href);
    assert.equal(r.status, 200, path);
    bodies.push([path || '/', r.body]);
  }
  const snapshot = JSON.parse(bodies.find(([p]) => p === 'api/snapshot')![1]);
  assert.equal(snapshot.drives[0].jobId, setup.jobId);
  assert.equal(snapshot.drives[0].lastFile, undefined, 'showFileNames is off by default');
  assert.equal(snapshot.jobs[0].log, `${setup.logBucket}/import-log-${setup.jobId}`);
  for (const [path, body] of bodies) {
    for (const [what, secret] of [
      ["the account's secret key", SECRET_KEY],
      ["the station's S3 secret key", setup.s3.secretAccessKey],
      ['a file name', 'private-ledger-qz81'],
      ['a file name', 'note-3.txt'],
      ["a file's content", MARKER],
    ] as const) {
      assert.ok(!body.includes(secret), `${what} is in ${path}`);
    }
  }

  // DNS rebinding: a name that is not a loopback one is not answered.
  const port = new URL(url).port;
  assert.equal((await get(new URL('api/status', url).href, `attacker.example:${port}`)).status, 421);
  assert.equal((await get(new URL('api/status', url).href, `127.evil.example:${port}`)).status, 421);
  for (const name of [`localhost:${port}`, `127.0.0.2:${port}`, `[::1]:${port}`]) {
    assert.equal((await get(new URL('api/status', url).href, name)).status, 200, name);
  }
  events.close();
  assert.equal(await daemon.kill('SIGTERM'), 0);
});

test('the screen on an address that is taken is an error in the log, and the daemon loads all the same; another address than loopback is warned about; off is off', async (t) => {
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;

  const busy = await screenSetupNoWait(t, `  listen: 127.0.0.1:${port}\n`);
  const error = await busy.daemon.waitFor((e) => e.level === 50 && /station screen cannot listen/.test(e.msg), 'the error');
  assert.equal(error.listen, `127.0.0.1:${port}`);
  writeDrive(busy.setup.drive, { 'a.txt': 'a' });
  renameSync(busy.setup.drive, join(busy.media, 'drive1'));
  await busy.daemon.waitFor(stageIs(busy.setup.jobId, 'done'), 'loaded without a screen');
  assert.equal(await busy.daemon.kill('SIGTERM'), 0);

  const open = await screenSetupNoWait(t, '  listen: 0.0.0.0:0\n');
  const warning = await open.daemon.waitFor((e) => e.level === 40 && /not only on this machine/.test(e.msg), 'the warning');
  assert.match(String(warning.url), /^http:\/\/0\.0\.0\.0:\d+\/$/);
  assert.match(warning.msg, /0\.0\.0\.0/);
  assert.equal(await open.daemon.kill('SIGTERM'), 0);

  const off = await screenSetupNoWait(t, '  enabled: false\n');
  await off.daemon.waitFor((e) => e.msg === 'station ready', 'ready');
  assert.ok(off.daemon.events.some((e) => /the station screen is off/.test(e.msg)));
  assert.ok(!off.daemon.events.some((e) => e.msg === 'station screen'), 'no screen listening');
  assert.equal(await off.daemon.kill('SIGTERM'), 0);
});

/** A daemon with its screen section as given, not waiting for the screen to listen. */
async function screenSetupNoWait(t: Parameters<typeof setupLoad>[0], screen: string) {
  const setup = await setupLoad(t, { config: `${watchMedia(false)}screen:\n${screen}` });
  const media = useMediaRoot(setup);
  const daemon = startDaemon(t, setup);
  return { setup, media, daemon };
}
