import type { S3Client } from '@aws-sdk/client-s3';
import type { Credentials } from './sigv4.js';

/**
 * The station's S3 credentials, found as every AWS tool finds them (the SDK's default chain). Its first link, keys
 * in the environment, is read here: a station's keys are usually there (the systemd unit's EnvironmentFile), and
 * then a `station load` never loads the SDK (some 40 ms, and more for its first use). Any other source (a
 * profile, SSO, an instance role) is the SDK's, which also refreshes credentials that expire.
 */
export function stationCredentials(sdk: () => Promise<S3Client>, env: NodeJS.ProcessEnv = process.env): () => Promise<Credentials> {
  const fromEnv = environmentCredentials(env);
  if (fromEnv) return async () => fromEnv;
  return async () => (await sdk()).config.credentials();
}

/**
 * Keys from the environment as the SDK's chain takes them: both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with
 * AWS_SESSION_TOKEN if set, and none when AWS_PROFILE is set (the chain then skips the environment for the
 * profile). An expiry (AWS_CREDENTIAL_EXPIRATION) is not kept: nothing could renew keys in the environment.
 */
export function environmentCredentials(env: NodeJS.ProcessEnv): Credentials | undefined {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env;
  if (env.AWS_PROFILE || !accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) };
}
