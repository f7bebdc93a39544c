import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config.js';
import type { S3Objects } from './api.js';
import { stationCredentials } from './credentials.js';
import { DirectObjects } from './direct-objects.js';
import { S3Thread } from './s3-thread.js';
import { SdkObjects } from './sdk-objects.js';

/**
 * The station's way to S3: its own requests from an S3Thread (`s3.directPut`, the default), or the SDK's commands.
 * The SDK's client is made only when something needs it: the SDK path, or credentials that are not in the
 * environment.
 */
export function openS3(s3: S3Settings, opts: { maxSockets: number; maxAttempts: number }): S3Objects {
  let sdk: Promise<S3Client> | undefined;
  const client = () => (sdk ??= import('./client.js').then((m) => m.makeS3Client(s3, opts.maxSockets, opts.maxAttempts)));
  const closeSdk = async () => {
    if (sdk) (await sdk).destroy();
  };
  if (!S3Thread.usedFor(s3)) return new SdkObjects(client, closeSdk);
  const thread = new S3Thread(stationCredentials(client), { s3, ...opts });
  return new DirectObjects(
    (req) => thread.request(req),
    async () => {
      // Each thread takes some milliseconds to stop: stopped together with the SDK's connections.
      await Promise.all([thread.destroy(), closeSdk()]);
    },
  );
}
