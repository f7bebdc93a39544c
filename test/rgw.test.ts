// The S3 behaviour the station relies on, checked against a real server (radosgw) through the
// unchanged AWS SDK over HTTP: Content-MD5 is enforced, ETags are MD5s, multipart ETags are
// md5(part MD5s)-N, and open multipart uploads can be listed and aborted.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
  type UploadPartCommandOutput,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import { makeBucket, s3ClientFor, useRgw } from './support/rgw.js';

const MiB = 1024 * 1024;
const md5 = (data: Buffer): Buffer => createHash('md5').update(data).digest();
const unquote = (etag: string | undefined): string | undefined => etag?.replace(/^"|"$/g, '');

/** Asserts that `promise` fails with an S3 error of this name and HTTP status. */
async function rejectsWith(promise: Promise<unknown>, name: string | string[], status: number): Promise<void> {
  await assert.rejects(promise, (err: S3ServiceException) => {
    assert.ok([name].flat().includes(err.name), `error name ${err.name}, expected ${name}`);
    assert.equal(err.$metadata.httpStatusCode, status);
    return true;
  });
}

let s3: S3Client;
let Bucket: string;

before(async () => {
  const conf = await useRgw();
  s3 = s3ClientFor(conf);
  Bucket = await makeBucket(conf, 'rgw-test');
});
after(() => s3?.destroy());

test('PutObject with a correct Content-MD5: ETag is the MD5 hex', async () => {
  const body = randomBytes(100_000);
  const put = await s3.send(
    new PutObjectCommand({ Bucket, Key: 'single/ok.bin', Body: body, ContentMD5: md5(body).toString('base64') }),
  );
  assert.equal(unquote(put.ETag), md5(body).toString('hex'));
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: 'single/ok.bin' }));
  assert.equal(unquote(head.ETag), md5(body).toString('hex'));
  assert.equal(head.ContentLength, body.length);
  const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'single/ok.bin' }));
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
});

test('PutObject with a wrong Content-MD5: 400 BadDigest and nothing stored', async () => {
  const body = randomBytes(100_000);
  const wrong = md5(Buffer.concat([body, Buffer.from('x')])).toString('base64');
  await rejectsWith(
    s3.send(new PutObjectCommand({ Bucket, Key: 'single/bad.bin', Body: body, ContentMD5: wrong })),
    'BadDigest',
    400,
  );
  await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key: 'single/bad.bin' })), 'NotFound', 404);
});

test('multipart upload with Content-MD5 per part: listed while open, ETag md5(part md5s)-2', async () => {
  const Key = 'multi/two-parts.bin';
  const parts = [randomBytes(5 * MiB), randomBytes(MiB + 123)]; // all but the last must be ≥ 5 MiB
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  assert.ok(UploadId);

  const done: { PartNumber: number; ETag: string }[] = [];
  for (const [i, body] of parts.entries()) {
    const PartNumber = i + 1;
    const { ETag }: UploadPartCommandOutput = await s3.send(
      new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ContentMD5: md5(body).toString('base64') }),
    );
    assert.equal(unquote(ETag), md5(body).toString('hex'), `part ${PartNumber} ETag`);
    done.push({ PartNumber, ETag: ETag! });
  }

  const listed = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
  assert.deepEqual(
    listed.Parts?.map((p) => [p.PartNumber, unquote(p.ETag), p.Size]),
    parts.map((body, i) => [i + 1, md5(body).toString('hex'), body.length]),
  );
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'multi/' }));
  assert.ok(uploads.Uploads?.some((u) => u.Key === Key && u.UploadId === UploadId), 'open upload is listed');

  await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done } }));
  // radosgw's CompleteMultipartUpload answer has an empty ETag: HeadObject has the real one
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
  assert.equal(unquote(head.ETag), `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-2`);
  assert.equal(head.ContentLength, parts[0]!.length + parts[1]!.length);

  const afterComplete = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'multi/' }));
  assert.ok(!afterComplete.Uploads?.some((u) => u.UploadId === UploadId), 'completed upload is no longer listed');
});

test('AbortMultipartUpload removes an open upload', async () => {
  const Key = 'multi/aborted.bin';
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const body = randomBytes(1000);
  await s3.send(
    new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: body, ContentMD5: md5(body).toString('base64') }),
  );
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }));
  assert.ok(open.Uploads?.some((u) => u.UploadId === UploadId), 'open upload is listed');
  const parts = await s3.send(new ListPartsCommand({ Bucket, Key, UploadId }));
  assert.equal(parts.Parts?.length, 1);

  await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));

  const afterAbort = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }));
  assert.ok(!afterAbort.Uploads?.some((u) => u.UploadId === UploadId), 'aborted upload is not listed');
  // AWS answers NoSuchUpload; radosgw answers NoSuchKey
  await rejectsWith(s3.send(new ListPartsCommand({ Bucket, Key, UploadId })), ['NoSuchUpload', 'NoSuchKey'], 404);
  await rejectsWith(s3.send(new HeadObjectCommand({ Bucket, Key })), 'NotFound', 404);
});
