import { readFileSync } from 'node:fs';
import { unreadableFile, usageError } from '../../errors.js';
import { normalizeJobId } from '../../jobs/ids.js';
import { sign, signatureFileText } from '../../signature.js';
import type { Command } from '../command.js';
import { readManifest } from '../input.js';

/** The customer's tool [orig, 2009]: signs a manifest for a job without the station's store. */
export const signCommand: Command = {
  name: 'sign',
  summary: "the customer's tool: print the SIGNATURE file text for a manifest and a job ID",
  usage: '--manifest FILE --job-id JOBID [--secret-key-file FILE]',
  positionals: [],
  options: { manifest: { type: 'string' }, 'job-id': { type: 'string' }, 'secret-key-file': { type: 'string' } },
  details:
    'The secret key comes from --secret-key-file, or else the environment variable AWS_SECRET_ACCESS_KEY.\n' +
    'Example: station sign --manifest manifest.yaml --job-id 4XK2Q > /media/drive/SIGNATURE',
  async run(ctx) {
    const manifestPath = ctx.string('manifest');
    const jobIdArg = ctx.string('job-id');
    if (!manifestPath || !jobIdArg) throw usageError('--manifest and --job-id are both required');
    const jobId = normalizeJobId(jobIdArg);
    const secret = secretKey(ctx.string('secret-key-file'), ctx.env);
    const { bytes } = readManifest(manifestPath);
    const signature = sign(secret, jobId, bytes);
    const text = signatureFileText(jobId, signature);
    if (ctx.json) ctx.print({ jobId, signature, signatureFileContents: text }, () => []);
    else process.stdout.write(text);
  },
};

function secretKey(file: string | undefined, env: NodeJS.ProcessEnv): string {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw unreadableFile(file, err);
    }
    const secret = text.replace(/\r?\n$/, '');
    if (secret === '') throw usageError(`${file} is empty: no secret key`);
    return secret;
  }
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (!secret) throw usageError('no secret key: set AWS_SECRET_ACCESS_KEY or pass --secret-key-file FILE');
  return secret;
}
