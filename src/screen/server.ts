import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isLoopbackHost, type ScreenSettings } from '../config.js';
import type { DriveState } from '../daemon/drive-state.js';
import { describe } from '../errors.js';
import type { JobStore } from '../jobs/store.js';
import type { Station } from '../load/loader.js';
import type { StationMetrics } from '../metrics.js';
import { RECENT_JOBS, screenSnapshot } from './snapshot.js';

/** How often the live view looks for a change; a change is sent at once, nothing when nothing changed. */
const TICK_MS = 500;
/** A comment line this often keeps idle connections (and proxies between) from timing out. */
const KEEPALIVE_MS = 15_000;
/** Screens at once: a monitor or two, a technician's laptop; more is a misbehaving client. */
const MAX_CLIENTS = 32;

/** The page's files, shipped in the package (copied beside this module by the build) and read once at start. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** Everything the page needs comes from here: no script, style, font or image from anywhere else. */
const HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface ScreenParts {
  log: Logger;
  metrics: StationMetrics;
  station: Station;
  store: JobStore;
  drives: () => DriveState[];
  /** the JSON of the Unix-socket status (`station status --json`) */
  status: () => unknown;
}

/**
 * The station screen and the metrics, on one local HTTP listener: the page for a monitor beside the drive bays
 * (`/`, `/app.js`, `/style.css`), its live feed (`/events`, server-sent events), `/api/snapshot`, `/api/status`
 * and `/metrics` (Prometheus). Started by the daemon; `undefined` when `screen.enabled` is false or the address
 * cannot be bound: the screen is an aid, and drives are loaded (and `station status` answers) without it.
 */
export async function startScreen(settings: ScreenSettings, parts: ScreenParts): Promise<ScreenServer | undefined> {
  const { log, metrics, station, store } = parts;
  metrics.readFrom({
    requestsInFlight: () => station.limit.activeCount,
    requestsWaiting: () => station.limit.pendingCount,
    bytesBuffered: () => station.memory.inUse,
    memoryBudget: () => station.memory.capacity,
    drives: () => {
      const n = new Map<string, number>();
      for (const s of parts.drives()) n.set(s.stage, (n.get(s.stage) ?? 0) + 1);
      return n;
    },
    jobs: () => store.countByStatus(),
  });
  if (!settings.enabled) {
    log.info('the station screen is off (screen.enabled: false): no page and no /metrics');
    return undefined;
  }
  const screen = new ScreenServer(settings, parts);
  try {
    await screen.listen();
  } catch (err) {
    log.error({ listen: `${settings.host}:${settings.port}`, err: describe(err) }, `the station screen cannot listen on ${settings.host}:${settings.port}; loading goes on without it`);
    return undefined;
  }
  if (!settings.loopback) {
    log.warn({ url: screen.url }, `the station screen listens on ${screen.url}, not only on this machine: anyone who can reach that address sees the drives and jobs (it has no login)`);
  }
  log.info({ url: screen.url, showFileNames: settings.showFileNames }, 'station screen');
  return screen;
}

export class ScreenServer {
  private readonly server: Server;
  private readonly assets = new Map<string, { body: Buffer; type: string }>();
  private readonly clients = new Set<ServerResponse>();
  private timer?: NodeJS.Timeout;
  private keepalive?: NodeJS.Timeout;
  private last = '';
  url = '';

  constructor(
    private readonly settings: ScreenSettings,
    private readonly parts: ScreenParts,
  ) {
    for (const [path, { file, type }] of Object.entries(ASSETS)) {
      const url = new URL(`./assets/${file}`, import.meta.url);
      try {
        this.assets.set(path, { body: readFileSync(url), type });
      } catch (err) {
        throw new Error(`the station screen's file ${url.pathname} cannot be read (${describe(err)}): was the build's copy of src/screen/assets skipped?`);
      }
    }
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        parts.log.warn({ url: req.url, err: describe(err) }, 'station screen: a request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error');
      });
    });
  }

  async listen(): Promise<void> {
    const { host, port } = this.settings;
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(port, host, resolve));
    const a = this.server.address() as AddressInfo;
    this.url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.keepalive);
    for (const c of this.clients) c.end();
    this.clients.clear();
    await new Promise((r) => {
      this.server.close(r);
      this.server.closeAllConnections();
    });
  }

  snapshot() {
    const { drives, store } = this.parts;
    return screenSnapshot(drives(), store.recent(RECENT_JOBS), this.settings.showFileNames);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.hostAllowed(req.headers.host)) {
      // DNS rebinding: a web page elsewhere whose name points at 127.0.0.1 must not read the station's state.
      res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' }).end(`the station screen answers to localhost and loopback addresses only, not "${req.headers.host ?? ''}"\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://screen').pathname;
    const asset = this.assets.get(path);
    if (asset) {
      res.writeHead(200, { ...HEADERS, 'content-type': asset.type, 'content-length': asset.body.length }).end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    switch (path) {
      case '/events':
        return this.events(req, res);
      case '/api/snapshot':
        return json(res, this.snapshot());
      case '/api/status':
        return json(res, this.parts.status());
      case '/metrics': {
        const { contentType, body } = await this.parts.metrics.text();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
        return;
      }
      default:
        res.writeHead(404, { ...HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    }
  }

  /** Loopback-bound, only loopback names are answered; bound elsewhere on purpose, any name the operator uses. */
  private hostAllowed(host: string | undefined): boolean {
    if (!this.settings.loopback) return true;
    if (host === undefined) return true; // HTTP/1.0 clients: no browser sends a request without one
    const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    return isLoopbackHost(name);
  }

  /** Server-sent events: the whole snapshot at once, then again whenever it changes. */
  private events(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end('too many screens open\n');
      return;
    }
    res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write(`retry: 2000\n\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.clients.add(res);
    req.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.idle();
    });
    if (!this.timer) {
      this.last = '';
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.keepalive = setInterval(() => {
        for (const c of this.clients) c.write(': keepalive\n\n');
      }, KEEPALIVE_MS);
    }
  }

  private tick(): void {
    let text: string;
    try {
      text = JSON.stringify(this.snapshot());
    } catch (err) {
      this.parts.log.warn({ err: describe(err) }, 'station screen: no snapshot');
      return;
    }
    if (text === this.last) return;
    this.last = text;
    for (const c of this.clients) c.write(`data: ${text}\n\n`);
  }

  /** No screen open: no work. */
  private idle(): void {
    clearInterval(this.timer);
    clearInterval(this.keepalive);
    this.timer = undefined;
    this.keepalive = undefined;
  }
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(value));
}
