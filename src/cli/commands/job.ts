import { writeFileSync } from 'node:fs';
import { describe, usageError } from '../../errors.js';
import type { Manifest } from '../../manifest/types.js';
import { sign, signatureFileText } from '../../signature.js';
import type { Command, Context } from '../command.js';
import { readManifest } from '../input.js';
import { jobJson, listLines, statusLines } from '../views.js';

const bucketCheckOption = { 'no-bucket-check': { type: 'boolean' as const } };

/** The job's buckets must exist, where the station knows how to reach S3 and the operator did not opt out. */
async function checkBuckets(ctx: Context, manifest: Manifest): Promise<void> {
  const { s3 } = ctx.config();
  if (ctx.flag('no-bucket-check')) return;
  if (!s3.configured) {
    process.stderr.write('warning: no S3 connection configured; buckets not checked\n');
    return;
  }
  const { checkBucketExists, makeS3Client } = await import('../../s3/client.js');
  const client = makeS3Client(s3, 2);
  try {
    for (const bucket of new Set([manifest.bucket, manifest.logBucket])) await checkBucketExists(client, bucket);
  } finally {
    client.destroy();
  }
}

const create: Command = {
  name: 'job create',
  summary: 'CREATE JOB: validate a manifest, issue a job ID and the SIGNATURE file text',
  usage: 'MANIFEST [--signature-out FILE] [--no-bucket-check]',
  positionals: ['MANIFEST'],
  options: { 'signature-out': { type: 'string' }, ...bucketCheckOption },
  details:
    'Prints the job ID on the first line. --signature-out FILE writes the SIGNATURE file text to FILE (copy it to the\n' +
    "root of the device, named SIGNATURE). The manifest's accessKeyId must name an account (station account add).",
  async run(ctx) {
    const { bytes, manifest } = readManifest(ctx.args.MANIFEST!);
    const store = ctx.store();
    const secret = store.secretKeyOf(manifest.accessKeyId);
    await checkBuckets(ctx, manifest);
    const job = store.create(bytes, manifest);
    const signature = sign(secret, job.id, bytes);
    const text = signatureFileText(job.id, signature);
    const out = ctx.string('signature-out');
    if (out !== undefined) writeText(out, text);
    ctx.print({ ...jobJson(job), signature, signatureFileContents: text }, () => [
      job.id,
      `job ${job.id} created: ${job.jobStatus}, device ${job.deviceStatus}, bucket ${manifest.bucket}`,
      ...(out !== undefined
        ? [`SIGNATURE file written to ${out}`]
        : ['SIGNATURE file (save as SIGNATURE at the root of the device):', ...text.trimEnd().split('\n')]),
    ]);
  },
};

function writeText(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw usageError(`cannot write ${path}: ${describe(err)}`);
  }
}

const status: Command = {
  name: 'job status',
  summary: 'GET STATUS: job and device status, times, the import log, the current manifest, the history',
  usage: 'JOBID',
  positionals: ['JOBID'],
  async run(ctx) {
    const store = ctx.store();
    const job = store.get(ctx.args.JOBID!);
    const history = store.history(job.id);
    const notes = store.notes(job.id);
    ctx.print(jobJson(job, history, notes), () => statusLines(job, history, notes));
  },
};

const update: Command = {
  name: 'job update',
  summary: 'UPDATE JOB: replace the manifest used for the load (Pending jobs only)',
  usage: 'JOBID MANIFEST [--no-bucket-check]',
  positionals: ['JOBID', 'MANIFEST'],
  options: bucketCheckOption,
  details: 'The device is still authenticated against the manifest given at CREATE JOB: the SIGNATURE does not change.',
  async run(ctx) {
    const store = ctx.store();
    store.get(ctx.args.JOBID!); // an unknown job is named before the manifest is read
    const { bytes, manifest } = readManifest(ctx.args.MANIFEST!);
    await checkBuckets(ctx, manifest);
    const job = store.update(ctx.args.JOBID!, bytes, manifest);
    ctx.print(jobJson(job), () => [`job ${job.id} updated: the load will use the new manifest`]);
  },
};

const cancel: Command = {
  name: 'job cancel',
  summary: 'CANCEL JOB: a Pending job is never loaded; an InProgress load stops after in-flight work',
  usage: 'JOBID',
  positionals: ['JOBID'],
  async run(ctx) {
    const before = ctx.store().get(ctx.args.JOBID!);
    const job = ctx.store().cancel(before.id);
    ctx.print(jobJson(job), () => [
      `job ${job.id} canceled${before.jobStatus === 'InProgress' ? ': the load stops once in-flight work is settled' : ''}`,
    ]);
  },
};

const list: Command = {
  name: 'job list',
  summary: 'LIST JOBS, newest first',
  usage: '',
  positionals: [],
  async run(ctx) {
    const jobs = ctx.store().list();
    ctx.print({ jobs: jobs.map((j) => jobJson(j)) }, () => listLines(jobs));
  },
};

const received: Command = {
  name: 'job received',
  summary: 'record that the device of a job is at the station (AtAWS)',
  usage: 'JOBID',
  positionals: ['JOBID'],
  async run(ctx) {
    const job = ctx.store().moveDevice(ctx.args.JOBID!, 'AtAWS', { note: 'recorded by an operator' });
    ctx.print(jobJson(job), () => [`device of job ${job.id} is ${job.deviceStatus}`]);
  },
};

const returned: Command = {
  name: 'job returned',
  summary: 'record that the device of a job was shipped back (Returned)',
  usage: 'JOBID --carrier CARRIER --tracking NUMBER',
  positionals: ['JOBID'],
  options: { carrier: { type: 'string' }, tracking: { type: 'string' } },
  async run(ctx) {
    const carrier = ctx.string('carrier');
    const trackingNumber = ctx.string('tracking');
    if (!carrier || !trackingNumber) throw usageError('--carrier and --tracking are both required');
    const job = ctx.store().moveDevice(ctx.args.JOBID!, 'Returned', { carrier, trackingNumber });
    ctx.print(jobJson(job), () => [`device of job ${job.id} is ${job.deviceStatus} (${carrier} ${trackingNumber})`]);
  },
};

export const jobCommands = [create, status, update, cancel, list, received, returned];
