// The fault proxy (test/support/fault-proxy.ts) in front of a real radosgw, driven by the unchanged
// AWS SDK: each fault reaches the SDK as it would from S3 (503 SlowDown, 400 BadDigest from radosgw
// itself when a body is corrupted in transit, a dropped connection), requests without a fault pass
// through unchanged (SigV4 signature, Host, Expect: 100-continue, multipart), and the proxy logs it all.
//
// Which 400 a corrupted body gets depends on the payload hash the SDK signs. Over plain HTTP the SDK
// signs the SHA-256 of a Buffer body (x-amz-content-sha256), and radosgw checks that before Content-MD5:
// 400 XAmzContentSHA256Mismatch. The station sends `UNSIGNED-PAYLOAD` for bodies with Content-MD5
// (s3.unsignedPayload, its default; src/s3/client.ts): then Content-MD5 is the only check, and a
// corrupted body is 400 BadDigest. Both are shown; the clients marked "unsigned" do what the station does.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type FaultRule } from './support/fault-proxy.js';
import { makeBucket, useRgw, type S3Conf } from './support/rgw.js';

const MiB = 1024 * 1024;
const md5 = (data: Buffer): Buffer => createHash('md5').update(data).digest();
const unquote = (etag: string | undefined): string | undefined => etag?.replace(/^"|"$/g, '');

/** Asserts that `promise` fails with an S3 error of this name and HTTP status. */
async function rejectsWith(promise: Promise<unknown>, name: string, status: number): Promise<void> {
  await assert.rejects(promise, (err: S3ServiceException) => {
    assert.equal(err.name, name);
    assert.equal(err.$metadata?.httpStatusCode, status);
    return true;
  });
}

let conf: S3Conf;
let proxy: FaultProxy;
let Bucket: string;
let s3: S3Client; // through the proxy, no retries, payload SHA-256 signed (the SDK's default)
let s3u: S3Client; // through the proxy, no retries, UNSIGNED-PAYLOAD (as the station sends bodies)
const clients: S3Client[] = [];

/**
 * The unchanged SDK, set up as for radosgw but pointed at `endpoint` (the proxy by default).
 * `maxAttempts` undefined = the SDK's default (3). `unsignedPayload`: send x-amz-content-sha256:
 * UNSIGNED-PAYLOAD instead of the body's SHA-256, as the station does for bodies with Content-MD5.
 */
function clientViaProxy(opts: { maxAttempts?: number; unsignedPayload?: boolean; endpoint?: string } = {}): S3Client {
  const client = new S3Client({
    endpoint: opts.endpoint ?? proxy.endpoint,
    region: conf.region,
    credentials: { accessKeyId: conf.accessKeyId, secretAccessKey: conf.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
  });
  if (opts.unsignedPayload) {
    client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (headers) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'testUnsignedPayload' },
    );
  }
  clients.push(client);
  return client;
}

/** A rule for requests on this object, optionally only with this method / these query parameters. */
function on(Key: string, method?: string, query: Record<string, string> = {}): FaultRule['match'] {
  return (req) =>
    req.path === `/${Bucket}/${Key}` &&
    (method === undefined || req.method === method) &&
    Object.entries(query).every(([name, value]) => req.query.get(name) === value);
}

/** What the proxy logged for this object: [method, status, fault] per request, in order. */
function logFor(Key: string): Array<[string, number | undefined, string | undefined]> {
  return proxy.log.filter((e) => e.path === `/${Bucket}/${Key}`).map((e) => [e.method, e.status, e.fault]);
}

const putWithMd5 = (client: S3Client, Key: string, body: Buffer) =>
  client.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: md5(body).toString('base64') }));

before(async () => {
  conf = await useRgw();
  proxy = await startFaultProxy(conf.endpoint);
  Bucket = await makeBucket(conf, 'fault-proxy');
  s3 = clientViaProxy({ maxAttempts: 1 });
  s3u = clientViaProxy({ maxAttempts: 1, unsignedPayload: true });
});
after(async () => {
  for (const client of clients) client.destroy();
  await proxy?.close();
});

describe('fault proxy, SDK without retries', () => {
  test('without a rule, requests pass through unchanged (signature over the forwarded Host checks out)', async () => {
    const Key = 'plain/hello.txt';
    let host: string | undefined;
    proxy.addRule({
      // a predicate that never matches, only to see the Host header the SDK signed
      match: (req) => {
        if (req.path === `/${Bucket}/${Key}` && req.method === 'PUT') host = req.headers.host;
        return false;
      },
      fault: { kind: 'drop' },
    });
    const body = Buffer.from('hello through the proxy\n');
    const put = await putWithMd5(s3, Key, body);
    assert.equal(unquote(put.ETag), md5(body).toString('hex'));
    assert.equal(`http://${host}`, proxy.endpoint, 'the SDK signed with the proxy as host');
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    assert.equal(got.ContentType, 'application/octet-stream');
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key: 'plain/missing.txt' })), 'NotFound', 404);
    assert.deepEqual(logFor(Key), [
      ['PUT', 200, undefined],
      ['GET', 200, undefined],
    ]);
  });

  test('radosgw does check the signed Host: the same request with Host changed after signing is refused', async () => {
    // so the pass-through above proves the proxy forwards Host as the client sent it
    const direct = clientViaProxy({ maxAttempts: 1, endpoint: conf.endpoint });
    direct.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (headers) headers.host = new URL(proxy.endpoint).host; // signed for radosgw's own host:port
        return next(args);
      },
      { step: 'deserialize', name: 'testRewriteHost' }, // after signing (finalizeRequest)
    );
    await rejectsWith(direct.send(new GetObjectCommand({ Bucket, Key: 'plain/hello.txt' })), 'SignatureDoesNotMatch', 403);
    await rejectsWith(
      direct.send(new PutObjectCommand({ Bucket, Key: 'plain/other-host.txt', Body: 'x' })),
      'SignatureDoesNotMatch',
      403,
    );
  });

  test("'status' 503 SlowDown: the SDK error is SlowDown/503, nothing stored, the next identical put stores it", async () => {
    const Key = 'status/slow.bin';
    const body = randomBytes(10_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'status', status: 503, code: 'SlowDown' } });
    await assert.rejects(putWithMd5(s3, Key, body), (err: S3ServiceException) => {
      assert.equal(err.name, 'SlowDown');
      assert.equal(err.$metadata.httpStatusCode, 503);
      assert.equal(err.$metadata.attempts, 1);
      assert.equal(err.message, 'Please reduce your request rate.');
      assert.equal(err.$fault, 'server');
      return true;
    });
    await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key })), 'NotFound', 404);
    const put = await putWithMd5(s3, Key, body);
    assert.equal(unquote(put.ETag), md5(body).toString('hex'));
    const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
    assert.equal(unquote(head.ETag), md5(body).toString('hex'));
    assert.equal(head.ContentLength, body.length);
    assert.deepEqual(logFor(Key), [
      ['PUT', 503, 'status'],
      ['HEAD', 404, undefined],
      ['PUT', 200, undefined],
      ['HEAD', 200, undefined],
    ]);
  });

  test("'corrupt' (station's UNSIGNED-PAYLOAD + Content-MD5): radosgw answers 400 BadDigest, stores nothing; the next put succeeds", async () => {
    const Key = 'corrupt/data.bin';
    const body = randomBytes(300_000); // more than one chunk on the wire: only the first is touched
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'corrupt' } });
    await rejectsWith(putWithMd5(s3u, Key, body), 'BadDigest', 400);
    await rejectsWith(s3u.send(new HeadObjectCommand({ Bucket, Key })), 'NotFound', 404);
    await putWithMd5(s3u, Key, body);
    const got = await s3u.send(new GetObjectCommand({ Bucket, Key }));
    assert.equal(unquote(got.ETag), md5(body).toString('hex'));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    assert.deepEqual(logFor(Key), [
      ['PUT', 400, 'corrupt'],
      ['HEAD', 404, undefined],
      ['PUT', 200, undefined],
      ['GET', 200, undefined],
    ]);
  });

  test("'corrupt' (SDK default: payload SHA-256 signed): radosgw answers 400 XAmzContentSHA256Mismatch before checking Content-MD5", async () => {
    const Key = 'corrupt/signed.bin';
    const body = randomBytes(300_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'corrupt' } });
    await rejectsWith(putWithMd5(s3, Key, body), 'XAmzContentSHA256Mismatch', 400);
    await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key })), 'NotFound', 404);
    const put = await putWithMd5(s3, Key, body);
    assert.equal(unquote(put.ETag), md5(body).toString('hex'));
    assert.deepEqual(logFor(Key), [
      ['PUT', 400, 'corrupt'],
      ['HEAD', 404, undefined],
      ['PUT', 200, undefined],
    ]);
  });

  test("'corrupt' with UNSIGNED-PAYLOAD and no Content-MD5: radosgw cannot tell, the damaged body is stored", async () => {
    // why an unsigned body must carry Content-MD5: otherwise a corruption in transit goes unnoticed
    const Key = 'corrupt/no-md5.bin';
    const body = randomBytes(1000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'corrupt' } });
    const put = await s3u.send(new PutObjectCommand({ Bucket, Key, Body: body }));
    assert.notEqual(unquote(put.ETag), md5(body).toString('hex'));
    const got = Buffer.from(await (await s3u.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray());
    assert.equal(got.length, body.length);
    assert.equal(got[0], body[0]! ^ 0xff, 'the first byte is flipped');
    assert.ok(got.subarray(1).equals(body.subarray(1)), 'the rest is intact');
    assert.deepEqual(logFor(Key), [
      ['PUT', 200, 'corrupt'],
      ['GET', 200, undefined],
    ]);
  });

  test("'drop': the SDK rejects with a network error (TimeoutError, ECONNRESET, socket hang up); the next put succeeds", async (t) => {
    const Key = 'drop/data.bin';
    const body = randomBytes(10_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'drop' } });
    await assert.rejects(putWithMd5(s3, Key, body), (err: Error & { code?: string; $metadata?: { attempts?: number } }) => {
      t.diagnostic(`drop → name=${err.name} code=${err.code} message=${err.message} attempts=${err.$metadata?.attempts}`);
      // node:http says ECONNRESET "socket hang up"; the SDK's handler renames ECONNRESET/EPIPE/ETIMEDOUT
      // errors to TimeoutError (and its retry strategy treats them as transient)
      assert.equal(err.name, 'TimeoutError');
      assert.equal(err.code, 'ECONNRESET');
      assert.equal(err.$metadata?.attempts, 1);
      assert.equal(err.message, 'socket hang up');
      return true;
    });
    await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key })), 'NotFound', 404);
    await putWithMd5(s3, Key, body);
    assert.deepEqual(logFor(Key), [
      ['PUT', undefined, 'drop'],
      ['HEAD', 404, undefined],
      ['PUT', 200, undefined],
    ]);
  });

  test("'delay': the request is held, then forwarded", async () => {
    const Key = 'delay/data.bin';
    const body = randomBytes(1000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'delay', ms: 300 } });
    const start = performance.now();
    await putWithMd5(s3, Key, body);
    assert.ok(performance.now() - start >= 290, 'took at least the delay');
    assert.deepEqual(logFor(Key), [['PUT', 200, 'delay']]);
  });

  test('`times`: a rule faults that many matching requests, then lets them pass', async () => {
    const Key = 'times/data.bin';
    const body = randomBytes(1000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'status', status: 500, code: 'InternalError' }, times: 2 });
    await rejectsWith(putWithMd5(s3, Key, body), 'InternalError', 500);
    await rejectsWith(putWithMd5(s3, Key, body), 'InternalError', 500);
    await putWithMd5(s3, Key, body);
    assert.deepEqual(logFor(Key), [
      ['PUT', 500, 'status'],
      ['PUT', 500, 'status'],
      ['PUT', 200, undefined],
    ]);
  });

  test('multipart through the proxy: 5 MiB parts go with Expect: 100-continue; faults on them; right ETag', async () => {
    const Key = 'multi/big.bin';
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(MiB + 123)];
    const { UploadId } = await s3u.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    assert.ok(UploadId);

    const expects = new Map<string, string | undefined>();
    proxy.addRule({
      match: (req) => {
        if (req.path === `/${Bucket}/${Key}` && req.method === 'PUT') {
          expects.set(req.query.get('partNumber')!, req.headers.expect);
        }
        return false;
      },
      fault: { kind: 'drop' },
      times: Infinity,
    });
    // the first try of part 1 is corrupted on the way (after the server's 100 Continue), of part 2
    // refused with 503 before its body (no 100 Continue), of part 3 dropped
    proxy.addRule({ match: on(Key, 'PUT', { partNumber: '1' }), fault: { kind: 'corrupt' } });
    proxy.addRule({
      match: on(Key, 'PUT', { partNumber: '2' }),
      fault: { kind: 'status', status: 503, code: 'SlowDown' },
    });
    proxy.addRule({ match: on(Key, 'PUT', { partNumber: '3' }), fault: { kind: 'drop' } });

    const uploadPart = (i: number) =>
      s3u.send(
        new UploadPartCommand({
          Bucket,
          Key,
          UploadId,
          PartNumber: i + 1,
          Body: parts[i],
          ContentMD5: md5(parts[i]!).toString('base64'),
        }),
      );
    await rejectsWith(uploadPart(0), 'BadDigest', 400);
    await rejectsWith(uploadPart(1), 'SlowDown', 503);
    await assert.rejects(uploadPart(2), { name: 'TimeoutError', code: 'ECONNRESET' });

    const done: { PartNumber: number; ETag: string }[] = [];
    for (let i = 0; i < parts.length; i++) {
      const { ETag } = await uploadPart(i);
      assert.equal(unquote(ETag), md5(parts[i]!).toString('hex'), `part ${i + 1} ETag`);
      done.push({ PartNumber: i + 1, ETag: ETag! });
    }
    assert.deepEqual(Object.fromEntries(expects), { '1': '100-continue', '2': '100-continue', '3': undefined });

    await s3u.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done } }));
    const head = await s3u.send(new HeadObjectCommand({ Bucket, Key }));
    assert.equal(unquote(head.ETag), `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-3`);
    assert.equal(head.ContentLength, parts.reduce((sum, p) => sum + p.length, 0));

    const log = proxy.log.filter((e) => e.path === `/${Bucket}/${Key}`);
    assert.deepEqual(
      log.map((e) => [e.method, new URLSearchParams(e.query).get('partNumber'), e.status, e.fault]),
      [
        ['POST', null, 200, undefined], // CreateMultipartUpload
        ['PUT', '1', 400, 'corrupt'],
        ['PUT', '2', 503, 'status'],
        ['PUT', '3', undefined, 'drop'],
        ['PUT', '1', 200, undefined],
        ['PUT', '2', 200, undefined],
        ['PUT', '3', 200, undefined],
        ['POST', null, 200, undefined], // CompleteMultipartUpload
        ['HEAD', null, 200, undefined],
      ],
    );
  });
});

describe('fault proxy, SDK with its default retries (3 attempts)', () => {
  test('a single 503 SlowDown is retried transparently: the put succeeds on the 2nd attempt', async () => {
    const retrying = clientViaProxy();
    const Key = 'retry/slow.bin';
    const body = randomBytes(10_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'status', status: 503, code: 'SlowDown' } });
    const put = await putWithMd5(retrying, Key, body);
    assert.equal(put.$metadata.attempts, 2);
    assert.equal(unquote(put.ETag), md5(body).toString('hex'));
    assert.deepEqual(logFor(Key), [
      ['PUT', 503, 'status'],
      ['PUT', 200, undefined],
    ]);
  });

  test('a dropped connection is retried too', async () => {
    const retrying = clientViaProxy();
    const Key = 'retry/drop.bin';
    const body = randomBytes(10_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'drop' } });
    const put = await putWithMd5(retrying, Key, body);
    assert.equal(put.$metadata.attempts, 2);
    assert.deepEqual(logFor(Key), [
      ['PUT', undefined, 'drop'],
      ['PUT', 200, undefined],
    ]);
  });

  test('400 BadDigest is not retried by the SDK: the caller must send the part again', async () => {
    const retrying = clientViaProxy({ unsignedPayload: true });
    const Key = 'retry/corrupt.bin';
    const body = randomBytes(10_000);
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'corrupt' } });
    await assert.rejects(putWithMd5(retrying, Key, body), (err: S3ServiceException) => {
      assert.equal(err.name, 'BadDigest');
      assert.equal(err.$metadata.attempts, 1);
      return true;
    });
    assert.deepEqual(logFor(Key), [['PUT', 400, 'corrupt']]);
  });

  test('503 on every attempt: the SDK gives up after 3 attempts with SlowDown', async () => {
    const retrying = clientViaProxy({ unsignedPayload: true });
    const Key = 'retry/always-slow.bin';
    proxy.addRule({ match: on(Key, 'PUT'), fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 3 });
    await assert.rejects(putWithMd5(retrying, Key, randomBytes(1000)), (err: S3ServiceException) => {
      assert.equal(err.name, 'SlowDown');
      assert.equal(err.$metadata.attempts, 3);
      return true;
    });
    assert.deepEqual(logFor(Key), [
      ['PUT', 503, 'status'],
      ['PUT', 503, 'status'],
      ['PUT', 503, 'status'],
    ]);
  });
});
