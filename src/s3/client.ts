import { S3Client, HeadBucketCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { S3Settings } from '../config.js';
import { StationError, Exit, refused, describe } from '../errors.js';

/**
 * The one place the S3 client is set up. Credentials come from the SDK's default chain (environment, profile,
 * instance role), as for every AWS tool.
 */
export function makeS3Client(s3: S3Settings, maxSockets = 32, maxAttempts = 3): S3Client {
  // The SDK warns on every Node 20 process that versions after January 2027 will need Node 22. The SDK is pinned,
  // and a warning on stderr would stand before the error name a script reads first.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Our own keep-alive agents: with the SDK's default handler a body sent with `Expect: 100-continue` (2 MiB and
  // more) gets a fresh connection that is closed after every part.
  const agent = { keepAlive: true, maxSockets, keepAliveMsecs: 10_000 };
  const client = new S3Client({
    region: s3.region,
    // Tries of one request (5xx, SlowDown, timeouts, dropped connections), with the SDK's backoff.
    maxAttempts,
    ...(s3.endpoint !== undefined && { endpoint: s3.endpoint }),
    forcePathStyle: s3.forcePathStyle,
    // Resolve each command's middleware stack once, not on every request: a quarter of the SDK's CPU per
    // request for many small files. The stack must then be complete before the first send (it is, below).
    cacheMiddleware: true,
    requestChecksumCalculation: s3.requestChecksumCalculation,
    responseChecksumValidation: s3.responseChecksumValidation,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
      connectionTimeout: 10_000,
      // A socket silent this long is dead (a pulled cable, a hung server): the request fails and is retried.
      // `socketTimeout`, not `requestTimeout`: in this handler the latter only logs a warning unless told to
      // throw, and it bounds the whole request, which a large part on a slow link may rightly exceed.
      socketTimeout: s3.requestTimeoutMs,
    }),
  });
  if (s3.unsignedPayload) {
    // Signing the payload means a SHA-256 over every body: 40% of the uploader's CPU over plain HTTP
    // (profiled). A body with Content-MD5 is checked by S3 anyway, and TLS protects the rest.
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { protocol?: string; headers?: Record<string, string> };
        const headers = request.headers;
        if (headers && (headers['content-md5'] !== undefined || request.protocol === 'https:')) {
          headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 'stationUnsignedPayload' },
    );
  }
  return client;
}

/** Refuses with `NoSuchBucket` when a bucket does not exist; an unreachable S3 is an error of its own. */
export async function checkBucketExists(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = (err as Error).name;
    if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket') {
      throw refused('NoSuchBucket', `bucket ${bucket} does not exist`);
    }
    if (status === 403) throw refused('AccessDenied', `the station's credentials may not use bucket ${bucket}`);
    throw new StationError(
      'S3Unreachable',
      `cannot check bucket ${bucket}: ${describe(err)} (use --no-bucket-check to create the job offline)`,
      Exit.usage,
      { cause: err },
    );
  }
}
