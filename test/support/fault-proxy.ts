// A fault-injecting HTTP proxy for tests: the unchanged AWS SDK talks to it (endpoint = proxy.endpoint,
// path-style) and it forwards every request to the real S3 server (radosgw), except that requests
// matching a rule get a fault: an S3 XML error answered by the proxy (e.g. 503 SlowDown), a request
// body with one byte flipped in transit (the server then answers 400 BadDigest against Content-MD5),
// a dropped connection, a delay, a connection reset in the middle of the request body, an answer held
// back past the client's timeout after the server did the work, or an answer cut off half-way.
// `chaos()` adds faults at random on every request (seeded, so a failing run can be replayed).
//
// Forwarding is transparent: the request line, every header (Host included, as the client sent it,
// so the SigV4 signature still matches) and the body go upstream unchanged and streamed; the answer's
// status, headers and body come back unchanged and streamed. Only the hop-by-hop headers Connection,
// Keep-Alive and Proxy-Connection are not forwarded (each side manages its own keep-alive connections;
// SigV4 never signs them). `Expect: 100-continue` is forwarded: the proxy relays the server's
// 100 Continue to the client before the body flows, or relays the server's early final answer (then
// the body is never sent). A 'status' or 'drop' fault on such a request answers without 100 Continue,
// as S3 does when it refuses a request before its body.
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { seededRandom } from '../../src/random.js';

export type Fault =
  | { kind: 'status'; status: number; code: string } // answer with an S3 XML error (e.g. 503 SlowDown) without forwarding
  | { kind: 'corrupt' } // forward, but flip one byte of the request body (keep Content-Length and headers unchanged) so the server answers BadDigest
  | { kind: 'drop' } // destroy the client socket without answering (after reading the request head)
  | { kind: 'delay'; ms: number } // hold the request this long, then forward
  | { kind: 'reset' } // forward, then cut both connections when half the request body has gone upstream (at once if it has none)
  | { kind: 'stall' } // forward; the server does the work, but its answer is never relayed (the client must time out)
  | { kind: 'truncate' }; // forward; relay the first half of the server's answer (status line, headers, body), then cut the connection

export type FaultKind = Fault['kind'];

/** Random faults: each request that no rule matched gets one with probability `rate`, its kind drawn evenly from `faults`. */
export interface Chaos {
  seed: number;
  rate: number;
  faults: Fault[];
}

export interface FaultRule {
  /** which requests: method, and a predicate on the decoded path+query (e.g. key contains "big.bin" and query has partNumber=2) */
  match: (req: { method: string; path: string; query: URLSearchParams; headers: IncomingHttpHeaders }) => boolean;
  fault: Fault;
  /** how many matching requests get the fault (default 1); later matches pass through */
  times?: number;
}

export interface FaultProxy {
  endpoint: string; // http://127.0.0.1:PORT
  addRule(rule: FaultRule): void;
  /** from now on, random faults on every request no rule matched (undefined: none) */
  chaos(chaos: Chaos | undefined): void;
  /** faults injected so far, by kind (a 'status' fault counted as `status <code>`) */
  counts(): Record<string, number>;
  /** every request seen: method, path, query string, status answered, whether a fault was injected */
  log: Array<{ method: string; path: string; query: string; status?: number; fault?: Fault['kind'] }>;
  close(): Promise<void>;
}

type LogEntry = FaultProxy['log'][number];

/** Hop-by-hop headers: per connection, not forwarded either way (and never part of a SigV4 signature). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection']);

/** The messages S3 sends with these codes; other codes get their code as the message. */
const MESSAGES: Record<string, string> = {
  SlowDown: 'Please reduce your request rate.',
  ServiceUnavailable: 'Please reduce your request rate.',
  InternalError: 'We encountered an internal error. Please try again.',
};

/** Starts the proxy on 127.0.0.1 (a free port), forwarding to `target` (http://host:port of the S3 server). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new Error(`fault proxy: only http:// targets are supported, not ${target}`);
  const upstreamHost = upstream.hostname.replace(/^\[|\]$/g, '');
  const upstreamPort = Number(upstream.port || 80);
  const agent = new Agent({ keepAlive: true });

  const rules: Array<{ rule: FaultRule; left: number }> = [];
  const log: LogEntry[] = [];
  const sockets = new Set<Socket>();
  const counts: Record<string, number> = {};
  let chaos: { rate: number; faults: Fault[]; random: () => number } | undefined;

  /** The fault for this request: a rule with uses left that matches (tried in the order added), else chaos's draw. */
  function faultFor(req: IncomingMessage, path: string, query: URLSearchParams): Fault | undefined {
    for (const entry of rules) {
      if (entry.left <= 0) continue;
      if (entry.rule.match({ method: req.method ?? '', path, query, headers: req.headers })) {
        entry.left--;
        return entry.rule.fault;
      }
    }
    if (chaos && chaos.random() < chaos.rate) return chaos.faults[Math.floor(chaos.random() * chaos.faults.length)];
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const entry: LogEntry = { method: req.method ?? '', path: decodePath(url.pathname), query: url.search.slice(1) };
    log.push(entry);
    res.once('finish', () => (entry.status = res.statusCode));

    let fault: Fault | undefined;
    try {
      fault = faultFor(req, entry.path, url.searchParams);
    } catch (err) {
      // a throwing predicate is a bug in the test: answer 500 so it shows, rather than hang
      answer(res, 500, 'InternalError', `fault proxy: rule predicate threw: ${String(err)}`);
      return;
    }
    if (fault) {
      entry.fault = fault.kind;
      const name = fault.kind === 'status' ? `status ${fault.code}` : fault.kind;
      counts[name] = (counts[name] ?? 0) + 1;
    }

    switch (fault?.kind) {
      case 'status':
        answer(res, fault.status, fault.code, MESSAGES[fault.code] ?? fault.code);
        return;
      case 'drop':
        req.socket.destroy();
        return;
      case 'delay': {
        const socket = req.socket;
        const onClose = () => clearTimeout(timer);
        const timer = setTimeout(() => {
          socket.off('close', onClose);
          forward(req, res, expectContinue, undefined);
        }, fault.ms);
        socket.once('close', onClose);
        return;
      }
      case 'reset':
        if (Number(req.headers['content-length'] ?? 0) === 0) req.socket.destroy();
        else forward(req, res, expectContinue, fault);
        return;
      case 'corrupt':
      case 'stall':
      case 'truncate':
        forward(req, res, expectContinue, fault);
        return;
      default:
        forward(req, res, expectContinue, undefined);
    }
  }

  function forward(req: IncomingMessage, res: ServerResponse, expectContinue: boolean, fault: Fault | undefined): void {
    if (req.socket.destroyed) return;
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, req.rawHeaders[i + 1]!);
    }
    const upReq = httpRequest({
      host: upstreamHost,
      port: upstreamPort,
      method: req.method,
      path: req.url,
      headers, // raw, in order and spelling as received: Host is the client's (the proxy's host:port)
      agent,
      setHost: false,
    });
    let bodySent = false; // the client's body is flowing upstream
    let answered = false; // the server's answer has begun
    const sendBody = () => {
      if (bodySent) return;
      bodySent = true;
      if (fault?.kind === 'corrupt') req.pipe(flipFirstByte()).pipe(upReq);
      else if (fault?.kind === 'reset') {
        req.pipe(cutAfter(Number(req.headers['content-length']) / 2, () => {
          upReq.destroy();
          req.socket.destroy();
        })).pipe(upReq);
      } else req.pipe(upReq);
    };

    upReq.on('response', (upRes) => {
      answered = true;
      const resHeaders: string[] = [];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        const name = upRes.rawHeaders[i]!;
        if (!HOP_BY_HOP.has(name.toLowerCase())) resHeaders.push(name, upRes.rawHeaders[i + 1]!);
      }
      if (fault?.kind === 'stall') {
        upRes.resume(); // the server's answer is taken and dropped; the client hears nothing until it gives up
        return;
      }
      if (fault?.kind === 'truncate') {
        const chunks: Buffer[] = [];
        upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upRes.on('end', () => {
          const head = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
          for (let i = 0; i < resHeaders.length; i += 2) head.push(`${resHeaders[i]}: ${resHeaders[i + 1]}`);
          const whole = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), ...chunks]);
          const socket = req.socket;
          socket.write(whole.subarray(0, Math.floor(whole.length / 2)), () => socket.destroy());
        });
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, resHeaders);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy()); // connection lost mid-answer: the client sees it cut too
      upRes.on('aborted', () => res.destroy());
      upRes.on('end', () => {
        // the server answered before taking the body (100-continue refused): this upstream request
        // can never complete, so its connection is not reusable
        if (!bodySent) upReq.destroy();
      });
    });
    upReq.on('error', (err) => {
      // once the server's answer has begun, its own stream reports a broken connection (see above);
      // a late error here is then only about the request body the server no longer wanted
      if (answered) return;
      if (!res.headersSent && !res.destroyed) {
        answer(res, 502, 'BadGateway', `fault proxy: upstream error: ${err.message}`);
      } else {
        res.destroy();
      }
    });
    // the client went away before the whole answer was relayed: stop the upstream request too
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });

    if (expectContinue) {
      // wait for the server's 100 Continue before asking the client for the body
      upReq.on('continue', () => {
        res.writeContinue();
        sendBody();
      });
      upReq.flushHeaders();
    } else {
      sendBody();
    }
  }

  const server = createServer({ keepAlive: true }); // HTTP keep-alive is Node's default; this adds TCP keep-alive
  server.on('request', (req, res) => handle(req, res, false));
  // With a 'checkContinue' listener Node does not answer 100 Continue by itself: the proxy decides.
  server.on('checkContinue', (req, res) => handle(req, res, true));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket: Socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    addRule(rule: FaultRule): void {
      rules.push({ rule, left: rule.times ?? 1 });
    },
    chaos(c: Chaos | undefined): void {
      chaos = c && { rate: c.rate, faults: c.faults, random: seededRandom(c.seed) };
    },
    counts: () => ({ ...counts }),
    log,
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        agent.destroy();
      });
    },
  };
}

/** Answers with an S3-style XML error, as S3 does (the SDK takes the error name from <Code>). */
function answer(res: ServerResponse, status: number, code: string, message: string): void {
  const body = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${xml(code)}</Code><Message>${xml(message)}</Message><RequestId>fault</RequestId></Error>`,
  );
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': body.length,
    'x-amz-request-id': 'fault',
  });
  res.end(body);
}

/** A pass-through stream that flips every bit of the first byte of the first non-empty chunk. */
function flipFirstByte(): Transform {
  let flipped = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!flipped && chunk.length > 0) {
        flipped = true;
        const copy = Buffer.from(chunk); // never modify a buffer someone else may hold
        copy[0] = copy[0]! ^ 0xff;
        chunk = copy;
      }
      callback(null, chunk);
    },
  });
}

/** A pass-through stream that calls `cut` (and passes nothing more) once `limit` bytes have gone through. */
function cutAfter(limit: number, cut: () => void): Transform {
  let passed = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (passed >= limit) return callback();
      const room = Math.max(1, Math.floor(limit - passed));
      passed += chunk.length;
      if (passed < limit) return callback(null, chunk);
      callback(null, chunk.subarray(0, room));
      setImmediate(cut); // after that piece has been written upstream
    },
  });
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
