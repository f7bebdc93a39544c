import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** Where requests go: one host and port, over TLS or not. */
export interface Origin {
  tls: boolean;
  host: string;
  port: number;
  /** the Host header's value */
  authority: string;
}

/** An answer: its status, its headers (lower-case names), its body. */
export interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * HTTP/1.1 requests on keep-alive connections, one request at a time on each: what S3 needs and no more. A request
 * is its head (written here from the method, path and headers) and a body of known length, corked into one write
 * when small; an answer is read by its Content-Length, chunk by chunk, or to the connection's end. A connection
 * silent for `timeoutMs` (nothing written or read) is dead: the request fails, and DirectS3 decides whether to try
 * again. Idle connections are kept `keepAliveMs`; at most `maxSockets` are open, and a request past that waits
 * for one to be free.
 *
 * Why not undici (the client before this one) or node:http: a `station load` spent ~0.1 CPU-s compiling undici's
 * llhttp parser (WebAssembly, by TurboFan) and loaded 470 KB of its code into the S3 thread, and each request went
 * through its dispatcher, pool, client and parser layers; S3's answers to these requests are a status line, a
 * dozen headers and at most a page of XML. The mixed bench drive took 2.43 -> 2.25 s (CPU 2.79 -> 2.53 s), a load of
 * one small file 0.30 -> 0.20 s (docs/benchmarks.md).
 */
export class Http1 {
  private readonly idle = new Map<string, Socket[]>();
  private readonly open = new Set<Socket>();
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly timeoutMs: number,
    private readonly maxSockets: number,
    private readonly keepAliveMs = 4_000,
  ) {}

  async request(origin: Origin, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Answer> {
    // The manifest's values are checked where they come in; a line break here would still be a header or a request
    // of someone else's making.
    if (BREAK.test(path)) throw new Error(`a request path with a line break: ${JSON.stringify(path)}`);
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${origin.authority}\r\n`;
    for (const name in headers) {
      if (name === 'host') continue;
      const value = headers[name]!;
      if (BREAK.test(name) || BREAK.test(value)) throw new Error(`a request header with a line break: ${JSON.stringify(name)}`);
      head += `${name}: ${value}\r\n`;
    }
    head += '\r\n';
    const key = `${origin.tls}|${origin.host}|${origin.port}`;
    // A kept connection the server has just closed without saying so fails the request like any dropped one:
    // DirectS3 tries again (as many times as `upload.maxAttempts` says, no more: a drop is a drop).
    const socket = this.takeIdle(key) ?? (await this.connect(key, origin));
    return this.exchange(socket, key, head, body, method);
  }

  /** One request and its answer on a connection. */
  private exchange(socket: Socket, key: string, head: string, body: Buffer | undefined, method: string): Promise<Answer> {
    socket.ref();
    return new Promise<Answer>((resolve, reject) => {
      const reader = new AnswerReader(method === 'HEAD');
      // An answer may come before the whole body went out (a refusal): that connection is not used again, or the
      // rest of the body would follow the next request's head.
      let sent = false;
      const settle = (err: Error | undefined, answer?: Answer) => {
        socket.off('data', onData).off('error', onError).off('close', onClose).off('timeout', onTimeout);
        if (err || !reader.keepAlive || !sent) socket.destroy();
        else this.release(key, socket);
        if (err) reject(err);
        else resolve(answer!);
      };
      const onData = (chunk: Buffer) => {
        let answer: Answer | undefined;
        try {
          answer = reader.push(chunk);
        } catch (err) {
          settle(err as Error);
          return;
        }
        if (answer) settle(undefined, answer);
      };
      const onError = (err: Error) => settle(err);
      const onClose = () => {
        const answer = reader.end();
        if (answer) settle(undefined, answer);
        else settle(Object.assign(new Error('the connection closed before the whole answer came'), { code: 'ECONNRESET' }));
      };
      const onTimeout = () => settle(Object.assign(new Error(`nothing sent or received for ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      socket.on('data', onData).on('error', onError).on('close', onClose).on('timeout', onTimeout);
      socket.setTimeout(this.timeoutMs);
      socket.cork();
      socket.write(head, 'latin1');
      if (body) writeInPieces(socket, body, () => (sent = true));
      else sent = true;
      socket.uncork();
    });
  }

  destroy(): void {
    for (const socket of this.open) socket.destroy();
  }

  /** A new connection, once fewer than `maxSockets` are open (an idle one is closed to make room). */
  private async connect(key: string, origin: Origin): Promise<Socket> {
    while (this.open.size >= this.maxSockets) {
      const idle = [...this.idle.values()].find((list) => list.length > 0)?.shift();
      if (idle) {
        this.open.delete(idle);
        idle.destroy();
      } else {
        await new Promise<void>((wake) => this.waiting.push(wake));
      }
      const reused = this.takeIdle(key);
      if (reused) return reused;
    }
    const socket = origin.tls
      ? tlsConnect({ host: origin.host, port: origin.port, ...(isIP(origin.host) === 0 && { servername: origin.host }) })
      : netConnect({ host: origin.host, port: origin.port });
    socket.setNoDelay(true);
    this.open.add(socket);
    // Idle, a connection the server closes or that errs is dropped; in a request, the request's own listeners
    // say what it means.
    socket.on('error', () => {});
    socket.once('close', () => {
      this.open.delete(socket);
      const list = this.idle.get(key);
      const i = list?.indexOf(socket) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      this.waiting.shift()?.();
    });
    return socket;
  }

  /** The last idle connection to this origin, no longer under its keep-alive's end. */
  private takeIdle(key: string): Socket | undefined {
    return this.idle.get(key)?.pop()?.off('timeout', closeIdle);
  }

  /** Back to the idle connections: it neither keeps the process alive nor lives past its keep-alive. */
  private release(key: string, socket: Socket): void {
    socket.unref().setTimeout(this.keepAliveMs).once('timeout', closeIdle);
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    list.push(socket);
    this.waiting.shift()?.();
  }
}

const BREAK = /[\r\n]/;

/** An idle connection past its keep-alive. */
function closeIdle(this: Socket): void {
  this.destroy();
}

/** A body goes out in 1 MiB pieces, each written when the last has left: the timeout measures silence. `written`
 * is told once the socket has taken the whole body. */
function writeInPieces(socket: Socket, body: Buffer, written: () => void): void {
  const PIECE = 1024 * 1024;
  if (body.length <= PIECE) {
    socket.write(body);
    written();
    return;
  }
  let at = 0;
  const next = () => {
    while (at < body.length) {
      const piece = body.subarray(at, at + PIECE);
      at += piece.length;
      if (!socket.write(piece)) {
        socket.once('drain', next);
        return;
      }
    }
    written();
  };
  next();
}

/** Reads one answer from the bytes of a connection. */
class AnswerReader {
  private buffered: Buffer | undefined;
  private status = 0;
  private headers = new Map<string, string>();
  private mode: 'head' | 'length' | 'chunked' | 'close' = 'head';
  private left = 0;
  private readonly body: Buffer[] = [];
  /** after a whole answer: whether the connection may carry the next request */
  keepAlive = true;

  constructor(private readonly noBody: boolean) {}

  /** Takes bytes; the answer once it is whole. */
  push(chunk: Buffer): Answer | undefined {
    let data = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = undefined;
    if (this.mode === 'head') {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (data.length > 64 * 1024) throw new Error('an answer whose head is over 64 KiB');
        this.buffered = data;
        return undefined;
      }
      this.readHead(data.toString('latin1', 0, end));
      data = data.subarray(end + 4);
      if (this.status >= 100 && this.status < 200) {
        // an interim answer (100 Continue): the real one follows
        this.headers = new Map();
        this.mode = 'head';
        return data.length > 0 ? this.push(data) : undefined;
      }
      const length = this.headers.get('content-length');
      if (this.noBody || this.status === 204 || this.status === 304) return this.whole(data);
      if (/chunked/i.test(this.headers.get('transfer-encoding') ?? '')) this.mode = 'chunked';
      else if (length !== undefined) {
        this.mode = 'length';
        this.left = Number(length);
        if (!Number.isSafeInteger(this.left) || this.left < 0) throw new Error(`an answer with Content-Length "${length}"`);
      } else {
        this.mode = 'close';
        this.keepAlive = false;
      }
    }
    if (this.mode === 'length') {
      const piece = data.subarray(0, this.left);
      this.body.push(piece);
      this.left -= piece.length;
      return this.left === 0 ? this.whole(data.subarray(piece.length)) : undefined;
    }
    if (this.mode === 'chunked') return this.chunks(data);
    this.body.push(data);
    return undefined;
  }

  /** The connection ended: the answer, if it was one that ends with it. */
  end(): Answer | undefined {
    if (this.mode !== 'close') return undefined;
    this.keepAlive = false;
    return { status: this.status, headers: this.headers, body: Buffer.concat(this.body) };
  }

  private readHead(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]!);
    if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0]!.slice(0, 40))}`);
    this.status = Number(m[2]);
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i]!.indexOf(':');
      if (colon <= 0) continue;
      this.headers.set(lines[i]!.slice(0, colon).trim().toLowerCase(), lines[i]!.slice(colon + 1).trim());
    }
    const connection = this.headers.get('connection')?.toLowerCase();
    this.keepAlive = m[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
  }

  private chunks(data: Buffer): Answer | undefined {
    for (;;) {
      if (this.left > 0) {
        const piece = data.subarray(0, this.left);
        this.body.push(piece);
        this.left -= piece.length;
        data = data.subarray(piece.length);
        if (this.left > 0) return undefined;
        this.left = -2; // the CRLF after the chunk
      }
      if (this.left === -2) {
        if (data.length < 2) {
          this.buffered = data;
          return undefined;
        }
        data = data.subarray(2);
        this.left = 0;
      }
      const eol = data.indexOf('\r\n');
      if (eol < 0) {
        this.buffered = data;
        return undefined;
      }
      const size = parseInt(data.toString('latin1', 0, eol), 16);
      if (!Number.isSafeInteger(size) || size < 0) throw new Error('a chunked answer with a bad chunk size');
      data = data.subarray(eol + 2);
      if (size === 0) {
        // the last chunk: trailers (none expected) end with an empty line
        const end = data.indexOf('\r\n');
        if (end < 0) {
          this.buffered = Buffer.concat([Buffer.from('0\r\n'), data]);
          return undefined;
        }
        return this.whole(data.subarray(end + 2));
      }
      this.left = size;
    }
  }

  private whole(rest: Buffer): Answer {
    // Bytes after the answer: the server sent what was not asked for; the connection is not reused.
    if (rest.length > 0) this.keepAlive = false;
    return { status: this.status, headers: this.headers, body: this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body) };
  }
}
