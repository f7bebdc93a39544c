/**
 * A loopback S3 "discard sink": speaks enough S3 (path style, no signature check) for rclone and the
 * AWS SDK to upload to it, hashes every body with MD5 (checking Content-MD5 when sent), answers with the
 * ETags real S3 would give, and throws the bytes away. Only key -> {size, etag, meta} is kept in memory.
 *
 *   node --import tsx bench/sink.ts [PORT]        (0 or absent: a free port)
 *   prints  SINK_ENDPOINT=http://127.0.0.1:PORT  on stdout once listening.
 *
 * Benchmark extras (not S3):
 *   GET    /__stats[?bucket=NAME]  JSON: {objects, bytes, ...} of that bucket, or of all buckets + process figures
 *   DELETE /__bucket?bucket=NAME   forget a bucket (frees memory between rounds)
 *
 * Performance matters: this process is a bottleneck candidate (~1 core at most). No logging per request.
 */
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import os from 'node:os';

// ---------------------------------------------------------------------------------------------- state

interface StoredObject {
  size: number;
  etag: string; // with quotes, as sent in headers
  lastModified: Date;
  contentType: string | undefined;
  meta: [string, string][] | undefined; // x-amz-meta-* headers as received
}

interface Counters {
  putObject: number;
  uploadPart: number;
  createMultipart: number;
  completeMultipart: number;
  abortMultipart: number;
  headObject: number;
  list: number;
  bodiesWithContentMd5: number;
  bodiesWithoutContentMd5: number;
  unsignedPayload: number;
  signedPayload: number;
  badDigest: number;
  /** connections that carried a body to this bucket */
  connections: number;
}

interface Bucket {
  name: string;
  objects: Map<string, StoredObject>;
  bytes: number;
  counters: Counters;
  sockets: WeakSet<object>;
}

interface Part {
  size: number;
  md5: Buffer; // binary digest
}

interface Upload {
  id: string;
  bucket: string;
  key: string;
  initiated: Date;
  contentType: string | undefined;
  meta: [string, string][] | undefined;
  parts: Map<number, Part>;
}

const buckets = new Map<string, Bucket>();
const uploads = new Map<string, Upload>();
const errorsByCode = new Map<string, number>();
const warnings = new Map<string, number>();
let requests = 0;
let requestIdCounter = 0;
const startedAt = Date.now();

const MIN_PART_SIZE = 5 * 1024 * 1024; // S3: every part but the last
const MAX_PART_NUMBER = 10_000;
const VALID_CHECKSUM_ALGORITHMS = new Set(['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME']);

function newCounters(): Counters {
  return {
    putObject: 0,
    uploadPart: 0,
    createMultipart: 0,
    completeMultipart: 0,
    abortMultipart: 0,
    headObject: 0,
    list: 0,
    bodiesWithContentMd5: 0,
    bodiesWithoutContentMd5: 0,
    unsignedPayload: 0,
    signedPayload: 0,
    badDigest: 0,
    connections: 0,
  };
}

function getBucket(name: string): Bucket {
  let b = buckets.get(name);
  if (b === undefined) {
    b = { name, objects: new Map(), bytes: 0, counters: newCounters(), sockets: new WeakSet() };
    buckets.set(name, b);
  }
  return b;
}

function warn(what: string): void {
  warnings.set(what, (warnings.get(what) ?? 0) + 1);
}

function storeObject(bucket: Bucket, key: string, obj: StoredObject): void {
  const old = bucket.objects.get(key);
  if (old !== undefined) bucket.bytes -= old.size;
  bucket.objects.set(key, obj);
  bucket.bytes += obj.size;
}

function deleteObject(bucket: Bucket, key: string): void {
  const old = bucket.objects.get(key);
  if (old !== undefined) {
    bucket.bytes -= old.size;
    bucket.objects.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------- helpers

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

function xmlUnescape(s: string): string {
  return s.replace(/&(quot|amp|lt|gt|apos|#(\d+)|#x([0-9a-fA-F]+));/g, (_m, name: string, dec?: string, hex?: string) => {
    if (dec !== undefined) return String.fromCodePoint(Number(dec));
    if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
    return name === 'quot' ? '"' : name === 'amp' ? '&' : name === 'lt' ? '<' : name === 'gt' ? '>' : "'";
  });
}

function nextRequestId(): string {
  requestIdCounter++;
  return requestIdCounter.toString(16).toUpperCase().padStart(16, '0');
}

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

function sendXml(res: http.ServerResponse, status: number, body: string, extra?: http.OutgoingHttpHeaders): void {
  const buf = Buffer.from(XML_HEAD + body, 'utf8');
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': buf.length,
    'x-amz-request-id': nextRequestId(),
    ...extra,
  });
  res.end(buf);
}

function sendEmpty(res: http.ServerResponse, status: number, extra?: http.OutgoingHttpHeaders): void {
  res.writeHead(status, { 'content-length': 0, 'x-amz-request-id': nextRequestId(), ...extra });
  res.end();
}

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly closeConnection = false,
  ) {
    super(message);
  }
}

function sendError(req: http.IncomingMessage, res: http.ServerResponse, err: S3Error): void {
  errorsByCode.set(err.code, (errorsByCode.get(err.code) ?? 0) + 1);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const extra: http.OutgoingHttpHeaders = err.closeConnection ? { connection: 'close' } : {};
  if (req.method === 'HEAD') {
    sendEmpty(res, err.status, { ...extra, 'x-amz-error-code': err.code });
    return;
  }
  const resource = (req.url ?? '/').split('?')[0] ?? '/';
  sendXml(
    res,
    err.status,
    `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>` +
      `<Resource>${xmlEscape(resource)}</Resource><RequestId>${requestIdCounter + 1}</RequestId></Error>`,
    extra,
  );
}

function headerString(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Payload encodings this sink refuses before reading a body (aws-chunked, STREAMING-*). */
function checkPayloadHeaders(req: http.IncomingMessage): S3Error | undefined {
  const sha = headerString(req, 'x-amz-content-sha256');
  const enc = headerString(req, 'content-encoding');
  if (
    (sha !== undefined && sha.startsWith('STREAMING-')) ||
    (enc !== undefined && enc.toLowerCase().includes('aws-chunked')) ||
    req.headers['x-amz-decoded-content-length'] !== undefined
  ) {
    return new S3Error(
      400,
      'InvalidRequest',
      `this discard sink does not accept aws-chunked / STREAMING-* payloads (x-amz-content-sha256: ${sha ?? '-'}, ` +
        `content-encoding: ${enc ?? '-'}); send a plain body with UNSIGNED-PAYLOAD or a hex SHA-256 ` +
        `(AWS SDK: requestChecksumCalculation: 'WHEN_REQUIRED')`,
      true,
    );
  }
  const algo = headerString(req, 'x-amz-checksum-algorithm') ?? headerString(req, 'x-amz-sdk-checksum-algorithm');
  if (algo !== undefined && !VALID_CHECKSUM_ALGORITHMS.has(algo.toUpperCase())) {
    warn(`invalid x-amz-checksum-algorithm value ${JSON.stringify(algo)} (not an S3 value; real S3 may refuse it)`);
  }
  return undefined;
}

function parseContentMd5(req: http.IncomingMessage): Buffer | undefined {
  const v = headerString(req, 'content-md5');
  if (v === undefined) return undefined;
  const b = Buffer.from(v, 'base64');
  if (b.length !== 16 || b.toString('base64') !== v.trim()) {
    throw new S3Error(400, 'InvalidDigest', `The Content-MD5 you specified was invalid: ${JSON.stringify(v)}`);
  }
  return b;
}

function countPayload(bucket: Bucket, req: http.IncomingMessage, hadMd5: boolean): void {
  const c = bucket.counters;
  if (!bucket.sockets.has(req.socket)) {
    bucket.sockets.add(req.socket);
    c.connections++;
  }
  if (hadMd5) c.bodiesWithContentMd5++;
  else c.bodiesWithoutContentMd5++;
  if (headerString(req, 'x-amz-content-sha256') === 'UNSIGNED-PAYLOAD') c.unsignedPayload++;
  else c.signedPayload++;
}

// Large bodies are hashed in worker threads so that one connection's MD5 does not hold up the others and the
// sink is not capped at one core (~400 MiB/s here when it hashed inline). The main thread copies each body into
// 1 MiB buffers that it transfers to the body's worker (order kept: one body, one worker); a worker sends each
// buffer back once hashed (reuse + back-pressure). Small bodies are hashed inline: cheaper than a message.

const OFFLOAD_MIN_BODY = 512 * 1024;
const STAGE_SIZE = 1024 * 1024;
const MAX_STAGES_IN_FLIGHT = 8; // per body, then the request is paused

const HASH_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  let h = hashes.get(m.id);
  if (m.drop) { hashes.delete(m.id); return; }
  if (h === undefined) { h = createHash('md5'); hashes.set(m.id, h); }
  if (m.buf !== undefined) {
    h.update(new Uint8Array(m.buf, 0, m.len));
    parentPort.postMessage({ id: m.id, buf: m.buf }, [m.buf]);
  }
  if (m.end) {
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, digest: h.digest() });
  }
});`;

interface HashJob {
  onBuffer(buf: ArrayBuffer): void;
  onDigest(d: Uint8Array): void;
}

class HashPool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, HashJob>();
  private readonly load: number[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private nextId = 1;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(HASH_WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; buf?: ArrayBuffer; digest?: Uint8Array }) => {
        const job = this.jobs.get(m.id);
        if (m.buf !== undefined) {
          if (job !== undefined) job.onBuffer(m.buf);
          else this.release(m.buf);
        }
        if (m.digest !== undefined && job !== undefined) {
          this.jobs.delete(m.id);
          this.load[i]!--;
          job.onDigest(m.digest);
        }
      });
      w.on('error', (err) => {
        console.error('sink: hash worker failed', err);
        process.exit(2);
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  take(): ArrayBuffer {
    return this.spare.pop() ?? new ArrayBuffer(STAGE_SIZE);
  }

  release(buf: ArrayBuffer): void {
    if (this.spare.length < 64) this.spare.push(buf);
  }

  /** Least-loaded worker for a new body. */
  open(job: HashJob): { id: number; worker: Worker; drop(): void } {
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    this.load[best]!++;
    const id = this.nextId++;
    this.jobs.set(id, job);
    const worker = this.workers[best]!;
    return {
      id,
      worker,
      drop: () => {
        if (this.jobs.delete(id)) {
          this.load[best]!--;
          worker.postMessage({ id, drop: true });
        }
      },
    };
  }
}

let hashPool: HashPool | undefined;

function hashBodyOffloaded(req: http.IncomingMessage, pool: HashPool): Promise<{ size: number; md5: Buffer }> {
  return new Promise((resolve, reject) => {
    let size = 0;
    let stage = pool.take();
    let stageView = new Uint8Array(stage);
    let fill = 0;
    let inFlight = 0;
    let paused = false;
    let ended = false;
    const handle = pool.open({
      onBuffer(buf) {
        inFlight--;
        pool.release(buf);
        if (paused && inFlight < MAX_STAGES_IN_FLIGHT / 2) {
          paused = false;
          req.resume();
        }
      },
      onDigest(d) {
        resolve({ size, md5: Buffer.from(d.buffer, d.byteOffset, d.byteLength) });
      },
    });
    const send = (end: boolean) => {
      if (fill > 0) {
        handle.worker.postMessage({ id: handle.id, buf: stage, len: fill, end }, [stage]);
        inFlight++;
        stage = pool.take();
        stageView = new Uint8Array(stage);
        fill = 0;
      } else if (end) {
        handle.worker.postMessage({ id: handle.id, end: true });
      }
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, STAGE_SIZE - fill);
        stageView.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === STAGE_SIZE) send(false);
      }
      if (inFlight >= MAX_STAGES_IN_FLIGHT && !paused) {
        paused = true;
        req.pause();
      }
    });
    req.on('end', () => {
      ended = true;
      send(true);
      pool.release(stage);
    });
    const fail = (err: Error) => {
      if (ended) return;
      ended = true;
      handle.drop();
      reject(err);
    };
    req.on('error', fail);
    req.on('aborted', () => fail(new Error('request aborted')));
  });
}

/** Hash a request body, discarding it. Resolves with {size, md5} when the body is complete. */
function hashBody(req: http.IncomingMessage): Promise<{ size: number; md5: Buffer }> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (hashPool !== undefined && length >= OFFLOAD_MIN_BODY) return hashBodyOffloaded(req, hashPool);
  return new Promise((resolve, reject) => {
    const h = createHash('md5');
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      h.update(chunk);
    });
    req.on('end', () => resolve({ size, md5: h.digest() }));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

const MAX_XML_BODY = 16 * 1024 * 1024;

function readText(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_XML_BODY) {
        reject(new S3Error(400, 'MaxMessageLengthExceeded', 'request body too large', true));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function collectMeta(req: http.IncomingMessage): [string, string][] | undefined {
  let meta: [string, string][] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length > 11 && name.toLowerCase().startsWith('x-amz-meta-')) {
      (meta ??= []).push([name.toLowerCase(), raw[i + 1]!]);
    }
  }
  return meta;
}

function objectHeaders(obj: StoredObject): http.OutgoingHttpHeaders {
  const h: http.OutgoingHttpHeaders = {
    etag: obj.etag,
    'last-modified': obj.lastModified.toUTCString(),
    'content-type': obj.contentType ?? 'binary/octet-stream',
    'accept-ranges': 'bytes',
  };
  if (obj.meta !== undefined) for (const [k, v] of obj.meta) h[k] = v;
  return h;
}

// ---------------------------------------------------------------------------------------------- handlers

/** Reads and hashes a body, counts how it was sent, and refuses it (BadDigest) when its Content-MD5 differs. */
async function checkedBody(req: http.IncomingMessage, bucket: ReturnType<typeof getBucket>, what: string) {
  const expected = parseContentMd5(req);
  const { size, md5 } = await hashBody(req);
  countPayload(bucket, req, expected !== undefined);
  if (expected !== undefined && !expected.equals(md5)) {
    bucket.counters.badDigest++;
    throw new S3Error(
      400,
      'BadDigest',
      `The Content-MD5 you specified did not match what we received (${what}: sent ${expected.toString('base64')}, ` +
        `received ${size} bytes with MD5 ${md5.toString('base64')})`,
    );
  }
  return { size, md5 };
}

async function putObject(req: http.IncomingMessage, res: http.ServerResponse, bucketName: string, key: string) {
  if (req.headers['x-amz-copy-source'] !== undefined) {
    throw new S3Error(501, 'NotImplemented', 'CopyObject is not supported by the discard sink');
  }
  const bucket = getBucket(bucketName);
  bucket.counters.putObject++;
  const { size, md5 } = await checkedBody(req, bucket, 'the object');
  const etag = `"${md5.toString('hex')}"`;
  storeObject(bucket, key, {
    size,
    etag,
    lastModified: new Date(),
    contentType: headerString(req, 'content-type'),
    meta: collectMeta(req),
  });
  sendEmpty(res, 200, { etag });
}

async function uploadPart(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  bucketName: string,
  key: string,
  q: URLSearchParams,
) {
  if (req.headers['x-amz-copy-source'] !== undefined) {
    throw new S3Error(501, 'NotImplemented', 'UploadPartCopy is not supported by the discard sink');
  }
  const uploadId = q.get('uploadId') ?? '';
  const partNumber = Number(q.get('partNumber'));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw new S3Error(400, 'InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}`);
  }
  const upload = uploads.get(uploadId);
  if (upload === undefined || upload.bucket !== bucketName || upload.key !== key) {
    req.resume();
    throw new S3Error(404, 'NoSuchUpload', `The specified upload does not exist: ${uploadId}`);
  }
  const bucket = getBucket(bucketName);
  bucket.counters.uploadPart++;
  const { size, md5 } = await checkedBody(req, bucket, `part ${partNumber}`);
  if (!uploads.has(uploadId)) throw new S3Error(404, 'NoSuchUpload', `upload ${uploadId} was aborted meanwhile`);
  upload.parts.set(partNumber, { size, md5 });
  sendEmpty(res, 200, { etag: `"${md5.toString('hex')}"` });
}

function createMultipart(req: http.IncomingMessage, res: http.ServerResponse, bucketName: string, key: string) {
  req.resume();
  const bucket = getBucket(bucketName);
  bucket.counters.createMultipart++;
  let id: string;
  do id = randomBytes(24).toString('base64url');
  while (uploads.has(id));
  uploads.set(id, {
    id,
    bucket: bucketName,
    key,
    initiated: new Date(),
    contentType: headerString(req, 'content-type'),
    meta: collectMeta(req),
    parts: new Map(),
  });
  sendXml(
    res,
    200,
    `<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Bucket>${xmlEscape(bucketName)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId>` +
      `</InitiateMultipartUploadResult>`,
  );
}

async function completeMultipart(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  bucketName: string,
  key: string,
  uploadId: string,
) {
  const body = await readText(req);
  const upload = uploads.get(uploadId);
  if (upload === undefined || upload.bucket !== bucketName || upload.key !== key) {
    throw new S3Error(404, 'NoSuchUpload', `The specified upload does not exist: ${uploadId}`);
  }
  const listed: { partNumber: number; etag: string }[] = [];
  for (const m of body.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const inner = m[1] ?? '';
    const pn = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner);
    const et = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner);
    if (pn === null || et === null) throw new S3Error(400, 'MalformedXML', 'a <Part> lacks PartNumber or ETag');
    listed.push({ partNumber: Number(pn[1]), etag: xmlUnescape(et[1] ?? '').trim().replace(/^"|"$/g, '').toLowerCase() });
  }
  if (listed.length === 0) {
    throw new S3Error(400, 'MalformedXML', 'CompleteMultipartUpload lists no parts');
  }
  let total = 0;
  const digests: Buffer[] = [];
  for (let i = 0; i < listed.length; i++) {
    const p = listed[i]!;
    if (i > 0 && p.partNumber <= listed[i - 1]!.partNumber) {
      throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
    }
    const stored = upload.parts.get(p.partNumber);
    if (stored === undefined || stored.md5.toString('hex') !== p.etag) {
      throw new S3Error(
        400,
        'InvalidPart',
        `Part ${p.partNumber} was not uploaded, or its ETag ${p.etag} does not match ` +
          `${stored === undefined ? 'any uploaded part' : stored.md5.toString('hex')}`,
      );
    }
    if (i < listed.length - 1 && stored.size < MIN_PART_SIZE) {
      throw new S3Error(
        400,
        'EntityTooSmall',
        `Part ${p.partNumber} is ${stored.size} bytes; every part but the last must be at least ${MIN_PART_SIZE} bytes`,
      );
    }
    total += stored.size;
    digests.push(stored.md5);
  }
  const etag = `"${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${listed.length}"`;
  const bucket = getBucket(bucketName);
  bucket.counters.completeMultipart++;
  uploads.delete(uploadId);
  storeObject(bucket, key, {
    size: total,
    etag,
    lastModified: new Date(),
    contentType: upload.contentType,
    meta: upload.meta,
  });
  sendXml(
    res,
    200,
    `<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Location>http://${xmlEscape(headerString(req, 'host') ?? '127.0.0.1')}/${xmlEscape(bucketName)}/${xmlEscape(key)}</Location>` +
      `<Bucket>${xmlEscape(bucketName)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag>` +
      `</CompleteMultipartUploadResult>`,
  );
}

function listParts(res: http.ServerResponse, bucketName: string, key: string, q: URLSearchParams) {
  const uploadId = q.get('uploadId') ?? '';
  const upload = uploads.get(uploadId);
  if (upload === undefined || upload.bucket !== bucketName || upload.key !== key) {
    throw new S3Error(404, 'NoSuchUpload', `The specified upload does not exist: ${uploadId}`);
  }
  const marker = Number(q.get('part-number-marker') ?? '0') || 0;
  const maxParts = Math.min(Number(q.get('max-parts') ?? '1000') || 1000, 1000);
  const numbers = [...upload.parts.keys()].filter((n) => n > marker).sort((a, b) => a - b);
  const page = numbers.slice(0, maxParts);
  const truncated = numbers.length > page.length;
  let xml =
    `<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucketName)}</Bucket>` +
    `<Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId><PartNumberMarker>${marker}</PartNumberMarker>` +
    `<NextPartNumberMarker>${page.length > 0 ? page[page.length - 1] : marker}</NextPartNumberMarker>` +
    `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated><StorageClass>STANDARD</StorageClass>`;
  for (const n of page) {
    const p = upload.parts.get(n)!;
    xml += `<Part><PartNumber>${n}</PartNumber><LastModified>${upload.initiated.toISOString()}</LastModified>`;
    xml += `<ETag>&quot;${p.md5.toString('hex')}&quot;</ETag><Size>${p.size}</Size></Part>`;
  }
  sendXml(res, 200, xml + '</ListPartsResult>');
}

function listMultipartUploads(res: http.ServerResponse, bucketName: string, q: URLSearchParams) {
  const prefix = q.get('prefix') ?? '';
  let xml =
    `<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucketName)}</Bucket>` +
    `<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>`;
  for (const u of uploads.values()) {
    if (u.bucket !== bucketName || !u.key.startsWith(prefix)) continue;
    xml += `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><StorageClass>STANDARD</StorageClass>`;
    xml += `<Initiated>${u.initiated.toISOString()}</Initiated></Upload>`;
  }
  sendXml(res, 200, xml + '</ListMultipartUploadsResult>');
}

/** ListObjects (v1) and ListObjectsV2, with prefix, delimiter, max-keys and markers. */
function listObjects(res: http.ServerResponse, bucketName: string, q: URLSearchParams) {
  const v2 = q.get('list-type') === '2';
  const bucket = getBucket(bucketName);
  bucket.counters.list++;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const maxKeys = Math.max(0, Math.min(Number(q.get('max-keys') ?? '1000'), 1000));
  const urlEncode = q.get('encoding-type') === 'url';
  const enc = (s: string) => xmlEscape(urlEncode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  let after = '';
  if (v2) {
    const token = q.get('continuation-token');
    after = token !== null ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
  } else {
    after = q.get('marker') ?? '';
  }
  const keys = [...bucket.objects.keys()].filter((k) => k.startsWith(prefix) && k > after);
  keys.sort();
  const contents: string[] = [];
  const prefixes: string[] = [];
  const seenPrefixes = new Set<string>();
  let last = '';
  let truncated = false;
  for (const k of keys) {
    if (contents.length + prefixes.length >= maxKeys) {
      truncated = true;
      break;
    }
    if (delimiter !== '') {
      const i = k.indexOf(delimiter, prefix.length);
      if (i >= 0) {
        const p = k.slice(0, i + delimiter.length);
        if (!seenPrefixes.has(p)) {
          seenPrefixes.add(p);
          prefixes.push(p);
        }
        last = k;
        continue;
      }
    }
    const o = bucket.objects.get(k)!;
    contents.push(
      `<Contents><Key>${enc(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified>` +
        `<ETag>&quot;${o.etag.slice(1, -1)}&quot;</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    );
    last = k;
  }
  // A common prefix swallows all the keys under it: skip them for the next page.
  if (truncated && delimiter !== '' && prefixes.length > 0) {
    const lp = prefixes[prefixes.length - 1]!;
    if (last.startsWith(lp)) last = lp + '\uffff';
  }
  const root = 'ListBucketResult';
  let xml = `<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(bucketName)}</Name>`;
  xml += `<Prefix>${enc(prefix)}</Prefix>`;
  if (delimiter !== '') xml += `<Delimiter>${enc(delimiter)}</Delimiter>`;
  xml += `<MaxKeys>${maxKeys}</MaxKeys>`;
  if (urlEncode) xml += `<EncodingType>url</EncodingType>`;
  xml += `<IsTruncated>${truncated}</IsTruncated>`;
  if (v2) {
    xml += `<KeyCount>${contents.length + prefixes.length}</KeyCount>`;
    const token = q.get('continuation-token');
    if (token !== null) xml += `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`;
    const sa = q.get('start-after');
    if (sa !== null) xml += `<StartAfter>${enc(sa)}</StartAfter>`;
    if (truncated) xml += `<NextContinuationToken>${Buffer.from(last, 'utf8').toString('base64url')}</NextContinuationToken>`;
  } else {
    xml += `<Marker>${enc(after)}</Marker>`;
    if (truncated) xml += `<NextMarker>${enc(last)}</NextMarker>`;
  }
  xml += contents.join('');
  for (const p of prefixes) xml += `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`;
  sendXml(res, 200, xml + `</${root}>`);
}

async function deleteObjects(req: http.IncomingMessage, res: http.ServerResponse, bucketName: string) {
  const body = await readText(req);
  const bucket = getBucket(bucketName);
  const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(body);
  let xml = `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`;
  for (const m of body.matchAll(/<Object>[\s\S]*?<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Object>/g)) {
    const key = xmlUnescape(m[1] ?? '');
    deleteObject(bucket, key);
    if (!quiet) xml += `<Deleted><Key>${xmlEscape(key)}</Key></Deleted>`;
  }
  sendXml(res, 200, xml + '</DeleteResult>');
}

function stats(res: http.ServerResponse, q: URLSearchParams) {
  const name = q.get('bucket');
  let body: unknown;
  if (name !== null) {
    const b = buckets.get(name);
    let openUploads = 0;
    for (const u of uploads.values()) if (u.bucket === name) openUploads++;
    body = {
      bucket: name,
      exists: b !== undefined,
      objects: b?.objects.size ?? 0,
      bytes: b?.bytes ?? 0,
      openMultipartUploads: openUploads,
      counters: b?.counters ?? newCounters(),
    };
  } else {
    const cpu = process.cpuUsage();
    body = {
      buckets: Object.fromEntries(
        [...buckets.values()].map((b) => [b.name, { objects: b.objects.size, bytes: b.bytes, counters: b.counters }]),
      ),
      openMultipartUploads: uploads.size,
      requests,
      errors: Object.fromEntries(errorsByCode),
      warnings: Object.fromEntries(warnings),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      maxRssKiB: process.resourceUsage().maxRSS,
      uptimeMs: Date.now() - startedAt,
    };
  }
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': buf.length });
  res.end(buf);
}

// ---------------------------------------------------------------------------------------------- routing

async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  requests++;
  const url = req.url ?? '/';
  const qi = url.indexOf('?');
  const path = qi < 0 ? url : url.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
  const method = req.method ?? 'GET';

  if (path.startsWith('/__')) {
    req.resume();
    if (path === '/__stats' && method === 'GET') return stats(res, q);
    if (path === '/__bucket' && method === 'DELETE') {
      const name = q.get('bucket') ?? '';
      buckets.delete(name);
      for (const [id, u] of uploads) if (u.bucket === name) uploads.delete(id);
      return sendEmpty(res, 204);
    }
    throw new S3Error(404, 'NotFound', `no such sink endpoint ${path}`);
  }

  const payloadError = checkPayloadHeaders(req);
  if (payloadError !== undefined) {
    req.resume();
    throw payloadError;
  }

  const slash = path.indexOf('/', 1);
  let bucketName: string;
  let key: string;
  try {
    bucketName = decodeURIComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
    key = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
  } catch {
    req.resume();
    throw new S3Error(400, 'InvalidURI', `Couldn't parse the specified URI: ${path}`);
  }

  if (bucketName === '') {
    req.resume();
    if (method !== 'GET') throw new S3Error(405, 'MethodNotAllowed', 'only ListBuckets on /');
    let xml = `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>sink</ID></Owner><Buckets>`;
    for (const b of buckets.keys()) {
      xml += `<Bucket><Name>${xmlEscape(b)}</Name><CreationDate>${new Date(startedAt).toISOString()}</CreationDate></Bucket>`;
    }
    return sendXml(res, 200, xml + '</Buckets></ListAllMyBucketsResult>');
  }

  if (key === '') {
    // Bucket-level operations. Buckets exist as soon as anyone names them.
    switch (method) {
      case 'PUT':
        req.resume();
        getBucket(bucketName);
        return sendEmpty(res, 200, { location: `/${bucketName}` });
      case 'HEAD':
        return sendEmpty(res, 200, { 'x-amz-bucket-region': 'us-east-1' });
      case 'GET':
        if (q.has('location')) {
          return sendXml(res, 200, `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`);
        }
        if (q.has('uploads')) return listMultipartUploads(res, bucketName, q);
        if (q.has('versioning')) {
          return sendXml(res, 200, `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`);
        }
        for (const sub of ['acl', 'policy', 'lifecycle', 'cors', 'tagging', 'object-lock', 'encryption', 'versions']) {
          if (q.has(sub)) throw new S3Error(501, 'NotImplemented', `?${sub} is not supported by the discard sink`);
        }
        return listObjects(res, bucketName, q);
      case 'DELETE':
        buckets.delete(bucketName);
        return sendEmpty(res, 204);
      case 'POST':
        if (q.has('delete')) return deleteObjects(req, res, bucketName);
        break;
    }
    req.resume();
    throw new S3Error(405, 'MethodNotAllowed', `${method} on a bucket is not supported by the discard sink`);
  }

  switch (method) {
    case 'PUT':
      if (q.has('partNumber') || q.has('uploadId')) return uploadPart(req, res, bucketName, key, q);
      if (q.has('tagging') || q.has('acl')) {
        req.resume();
        return sendEmpty(res, 200);
      }
      return putObject(req, res, bucketName, key);
    case 'POST':
      if (q.has('uploads')) return createMultipart(req, res, bucketName, key);
      if (q.has('uploadId')) return completeMultipart(req, res, bucketName, key, q.get('uploadId') ?? '');
      break;
    case 'HEAD': {
      const b = buckets.get(bucketName);
      if (b !== undefined) b.counters.headObject++;
      const o = b?.objects.get(key);
      if (o === undefined) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, { ...objectHeaders(o), 'content-length': o.size, 'x-amz-request-id': nextRequestId() });
      res.end();
      return;
    }
    case 'GET': {
      req.resume();
      if (q.has('uploadId')) return listParts(res, bucketName, key, q);
      const o = buckets.get(bucketName)?.objects.get(key);
      if (o === undefined) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      throw new S3Error(501, 'NotImplemented', 'GetObject: the discard sink keeps no bytes');
    }
    case 'DELETE': {
      req.resume();
      if (q.has('uploadId')) {
        const id = q.get('uploadId') ?? '';
        const u = uploads.get(id);
        if (u === undefined || u.bucket !== bucketName || u.key !== key) {
          throw new S3Error(404, 'NoSuchUpload', `The specified upload does not exist: ${id}`);
        }
        uploads.delete(id);
        getBucket(bucketName).counters.abortMultipart++;
        return sendEmpty(res, 204);
      }
      const b = buckets.get(bucketName);
      if (b !== undefined) deleteObject(b, key);
      return sendEmpty(res, 204);
    }
  }
  req.resume();
  throw new S3Error(405, 'MethodNotAllowed', `${method} ${path} is not supported by the discard sink`);
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  let p: Promise<void> | void;
  try {
    p = route(req, res);
  } catch (err) {
    fail(req, res, err);
    return;
  }
  if (p instanceof Promise) p.catch((err) => fail(req, res, err));
}

function fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
  if (err instanceof S3Error) {
    if (!req.complete) req.resume();
    sendError(req, res, err);
    return;
  }
  // Aborted bodies and the like: nothing to answer to.
  errorsByCode.set('InternalError', (errorsByCode.get('InternalError') ?? 0) + 1);
  if (!res.headersSent && !res.destroyed && !req.destroyed) {
    sendError(req, res, new S3Error(500, 'InternalError', String((err as Error)?.message ?? err), true));
  } else {
    res.destroy();
  }
}

// ---------------------------------------------------------------------------------------------- server

/**
 * hashThreads: worker threads hashing bodies of 512 KiB or more (0: hash everything on the main thread).
 * Default: SINK_HASH_THREADS, else the number of CPUs capped at 2.
 */
export function startSink(
  port = 0,
  host = '127.0.0.1',
  hashThreads = Number(process.env.SINK_HASH_THREADS ?? Math.min(2, os.availableParallelism())),
): Promise<{ server: http.Server; endpoint: string }> {
  if (hashThreads > 0 && hashPool === undefined) hashPool = new HashPool(hashThreads);
  const server = http.createServer({ keepAlive: true, highWaterMark: 256 * 1024 }, handle);
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0; // a 256 MiB PUT on a slow machine may take a while
  server.maxRequestsPerSocket = 0;
  // Expect: 100-continue: refuse bad payload encodings before the client sends the body.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const err = checkPayloadHeaders(req);
    if (err !== undefined) {
      requests++;
      sendError(req, res, err); // carries connection: close, the client may send the body anyway
      return;
    }
    res.writeContinue();
    handle(req, res);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const p = typeof addr === 'object' && addr !== null ? addr.port : port;
      resolve({ server, endpoint: `http://${host}:${p}` });
    });
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const port = Number(process.argv[2] ?? process.env.SINK_PORT ?? 0);
  const { server, endpoint } = await startSink(Number.isFinite(port) ? port : 0);
  process.stdout.write(`SINK_ENDPOINT=${endpoint}\n`);
  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
