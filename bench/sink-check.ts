/**
 * Self-check of the discard sink with the AWS SDK (no test framework: exits non-zero on the first failure).
 *   node --import tsx bench/sink-check.ts
 * Starts a sink in this process on a free port, then: PutObject with a right and a wrong Content-MD5, HeadObject,
 * a 3-part multipart upload (checks the md5-of-md5s-N ETag), EntityTooSmall, Abort, ListParts, ListObjects v1/v2,
 * an aws-chunked body refused, and the /__stats counters.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startSink } from './sink.ts';

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

const { server, endpoint } = await startSink(0);
const s3 = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const Bucket = 'check';
let passed = 0;
const ok = (what: string) => {
  passed++;
  console.log(`ok ${passed} - ${what}`);
};

async function expectS3Error(p: Promise<unknown>, code: string, status: number): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof S3ServiceException, `expected an S3ServiceException, got ${String(err)}`);
    assert.equal(err.name, code);
    assert.equal(err.$metadata.httpStatusCode, status);
    return;
  }
  assert.fail(`expected ${code}`);
}

try {
  // PutObject, right Content-MD5
  const body = Buffer.alloc(100_000, 7);
  const put = await s3.send(
    new PutObjectCommand({ Bucket, Key: 'a/b c+é.bin', Body: body, ContentMD5: md5(body).toString('base64') }),
  );
  assert.equal(put.ETag, `"${md5(body).toString('hex')}"`);
  ok('PutObject with a right Content-MD5: ETag is the body MD5');

  // PutObject, wrong Content-MD5
  await expectS3Error(
    s3.send(new PutObjectCommand({ Bucket, Key: 'bad', Body: body, ContentMD5: md5(Buffer.from('x')).toString('base64') })),
    'BadDigest',
    400,
  );
  ok('PutObject with a wrong Content-MD5: 400 BadDigest');

  // HeadObject
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'a/b c+é.bin' }));
  assert.equal(head.ContentLength, body.length);
  assert.equal(head.ETag, put.ETag);
  ok('HeadObject: ETag and Content-Length');
  await expectS3Error(s3.send(new HeadObjectCommand({ Bucket, Key: 'bad' })), 'NotFound', 404);
  ok('HeadObject of a refused upload: 404');

  // Multipart: 5 MiB + 5 MiB + 1 KiB
  const parts = [Buffer.alloc(5 << 20, 1), Buffer.alloc(5 << 20, 2), Buffer.alloc(1024, 3)];
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'big' }));
  const UploadId = created.UploadId!;
  assert.ok(UploadId);
  const etags: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const r = await s3.send(
      new UploadPartCommand({ Bucket, Key: 'big', UploadId, PartNumber: i + 1, Body: p, ContentMD5: md5(p).toString('base64') }),
    );
    assert.equal(r.ETag, `"${md5(p).toString('hex')}"`);
    etags.push(r.ETag!);
  }
  await expectS3Error(
    s3.send(
      new UploadPartCommand({ Bucket, Key: 'big', UploadId, PartNumber: 4, Body: parts[2], ContentMD5: md5(parts[0]!).toString('base64') }),
    ),
    'BadDigest',
    400,
  );
  const lp = await s3.send(new ListPartsCommand({ Bucket, Key: 'big', UploadId }));
  assert.deepEqual(lp.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]), etags.map((e, i) => [i + 1, e, parts[i]!.length]));
  ok('UploadPart ETags, a wrong part Content-MD5 refused, ListParts');
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key: 'big',
      UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  const expected = `"${md5(Buffer.concat(parts.map(md5))).toString('hex')}-3"`;
  assert.equal(done.ETag, expected);
  const head2 = await s3.send(new HeadObjectCommand({ Bucket, Key: 'big' }));
  assert.equal(head2.ETag, expected);
  assert.equal(head2.ContentLength, (10 << 20) + 1024);
  ok(`CompleteMultipartUpload: ETag ${expected}, HeadObject length`);

  // EntityTooSmall, then Abort
  const c2 = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'small-parts' }));
  const small = Buffer.alloc(1024, 9);
  const e1 = await s3.send(new UploadPartCommand({ Bucket, Key: 'small-parts', UploadId: c2.UploadId, PartNumber: 1, Body: small }));
  const e2 = await s3.send(new UploadPartCommand({ Bucket, Key: 'small-parts', UploadId: c2.UploadId, PartNumber: 2, Body: small }));
  await expectS3Error(
    s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: 'small-parts',
        UploadId: c2.UploadId,
        MultipartUpload: { Parts: [{ ETag: e1.ETag, PartNumber: 1 }, { ETag: e2.ETag, PartNumber: 2 }] },
      }),
    ),
    'EntityTooSmall',
    400,
  );
  await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'small-parts', UploadId: c2.UploadId }));
  await expectS3Error(s3.send(new ListPartsCommand({ Bucket, Key: 'small-parts', UploadId: c2.UploadId })), 'NoSuchUpload', 404);
  ok('EntityTooSmall for a 1 KiB non-last part; AbortMultipartUpload');

  // Listings
  const l2 = await s3.send(new ListObjectsV2Command({ Bucket }));
  assert.deepEqual(l2.Contents?.map((c) => [c.Key, c.Size]), [['a/b c+é.bin', body.length], ['big', (10 << 20) + 1024]]);
  const l2d = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/', MaxKeys: 1 }));
  assert.deepEqual(l2d.CommonPrefixes?.map((p) => p.Prefix), ['a/']);
  assert.equal(l2d.IsTruncated, true);
  const l2n = await s3.send(new ListObjectsV2Command({ Bucket, Delimiter: '/', ContinuationToken: l2d.NextContinuationToken }));
  assert.deepEqual(l2n.Contents?.map((c) => c.Key), ['big']);
  const l1 = await s3.send(new ListObjectsCommand({ Bucket, Prefix: 'a/' }));
  assert.deepEqual(l1.Contents?.map((c) => c.Key), ['a/b c+é.bin']);
  ok('ListObjectsV2 (delimiter, paging) and ListObjects v1');

  // aws-chunked refused (raw request, as the SDK's default checksum mode would send)
  const port = new URL(endpoint).port;
  const status = await new Promise<number>((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/${Bucket}/chunked`,
        headers: {
          'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': '5',
          'content-length': '40',
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    r.on('error', reject);
    r.end('5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n'.slice(0, 40));
  });
  assert.equal(status, 400);
  ok('aws-chunked / STREAMING-* body refused with 400');

  // Stats
  const st = (await (await fetch(`${endpoint}/__stats?bucket=${Bucket}`)).json()) as {
    objects: number;
    bytes: number;
    counters: { badDigest: number };
  };
  assert.equal(st.objects, 2);
  assert.equal(st.bytes, body.length + (10 << 20) + 1024);
  assert.equal(st.counters.badDigest, 2);
  ok('/__stats: objects, bytes, badDigest');
  console.log(`${passed} passed, 0 failed`);
} catch (err) {
  console.error(err);
  console.log(`${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  s3.destroy();
  server.close();
  server.closeAllConnections();
}
