import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { LimitFunction } from 'p-limit';
import type { Config } from '../config.js';
import type { LogRow } from '../importlog/format.js';
import { logName, readLogInto, writeLocalLog } from '../importlog/writer.js';
import type { Db } from '../jobs/db.js';
import type { Job, JobStore } from '../jobs/store.js';
import type { Manifest } from '../manifest/types.js';
import type { LoadMetrics } from '../metrics.js';
import type { S3Objects } from '../s3/api.js';
import { describe } from '../errors.js';
import { S3Refused, S3Unreachable } from '../s3/errors.js';
import { admit } from './admit.js';
import { Budget } from './budget.js';
import type { BodyMemory } from './buffers.js';
import { Journal } from './journal.js';
import type { Md5Pool } from './md5-pool.js';
import { countDevice } from './count.js';
import { KeyClaims, KeyMapper, ROWS } from './keys.js';
import { ObjectWriter } from './objects.js';
import { Progress } from './progress.js';
import { openSource } from './read.js';
import { abortAbandonedUploads, abortOrphanedUploads } from './sweep.js';
import { FileUploader, type StopReason, type UploadResult } from './upload-file.js';
import { walk, displayPath, type Entry } from './walk.js';

/** What a station shares among all its loads: one way to S3 and one budget of requests, memory and open files. */
export interface Station {
  store: JobStore;
  /** the same database file as the store, on a connection that does not sync every commit: a commit per file */
  journalDb: Db;
  config: Config;
  /** the S3 calls (src/s3/open.ts) */
  s3: S3Objects;
  limit: LimitFunction;
  memory: BodyMemory;
  md5: Md5Pool;
  files: Budget;
  multipartFiles: Budget;
  log: Logger;
  /** the daemon's Prometheus counters (src/metrics.ts); none for `station load` */
  metrics?: LoadMetrics;
}

export interface LoadRequest {
  root: string;
  /** the job ID from the shipping label, for a drive whose SIGNATURE is missing or unreadable */
  jobHint?: string;
  verify: boolean;
  progress?: Progress;
  /** told once the device is admitted and its load begins */
  onAdmitted?: (job: Job, manifest: Manifest) => void;
  /** stops the load as a shutdown does: in-flight work settled, the job left InProgress to resume; a string
   * reason (`controller.abort('the drive was removed')`) is what the outcome and the log say */
  signal?: AbortSignal;
}

export type LoadEnd =
  | { kind: 'finished' }
  | { kind: 'canceled' }
  /** the load stopped and the job stays InProgress: run again (or plug the drive back) to resume */
  | { kind: 'interrupted'; reason: string };

export interface LoadOutcome {
  job: Job;
  end: LoadEnd;
  errorCount: number;
  progress: Progress;
  logFile?: string;
}


/**
 * One load: admit the device, walk it, upload every file under the station's shared budgets, journal each row,
 * then write and store the import log and end the job. The daemon runs exactly this for every drive it finds.
 */
export async function loadDevice(station: Station, req: LoadRequest): Promise<LoadOutcome> {
  const { job, manifest } = await admit(station.store, req.root, req.jobHint);
  req.onAdmitted?.(job, manifest);
  const log = station.log.child({ jobId: job.id, device: req.root });
  log.info({ bucket: manifest.bucket }, 'load started');
  return new Load(station, req, job, manifest, log).run();
}

class Load {
  private readonly journal: Journal;
  private readonly mapper: KeyMapper;
  private readonly writer: ObjectWriter;
  private readonly uploader: FileUploader;
  private readonly progress: Progress;
  private stop: StopReason | undefined;
  private interruption: string | undefined;
  private taskError: unknown;

  constructor(
    private readonly station: Station,
    private readonly req: LoadRequest,
    private readonly job: Job,
    private readonly manifest: Manifest,
    private readonly log: Logger,
  ) {
    this.journal = new Journal(station.journalDb, job.id);
    this.mapper = new KeyMapper(manifest);
    this.writer = new ObjectWriter(station.s3, manifest.bucket, station.limit, station.metrics?.request);
    this.progress = req.progress ?? new Progress();
    this.uploader = new FileUploader({
      writer: this.writer,
      memory: station.memory,
      md5: station.md5,
      multipartFiles: station.multipartFiles,
      journal: this.journal,
      settings: station.config.upload,
      manifest,
      log,
      stopReason: () => this.stop,
      onBytes: (n) => {
        this.progress.addBytes(n);
        station.metrics?.bytesUploaded(n);
      },
    });
  }

  async run(): Promise<LoadOutcome> {
    const watcher = setInterval(() => this.checkCanceled(), 1000);
    const onAbort = () => {
      const reason: unknown = this.req.signal?.reason;
      this.interrupt(typeof reason === 'string' ? reason : 'the station is shutting down');
    };
    this.req.signal?.addEventListener('abort', onAbort);
    if (this.req.signal?.aborted) onAbort();
    try {
      try {
        // The count runs beside the uploads: it only gives progress its totals, and a drive of many files would
        // otherwise wait for a whole walk before its first byte goes up. Uploads that are done first (a drive of
        // a few files, while the count's thread is still starting) do not wait for it.
        const stopCount = new AbortController();
        const counting = this.count(stopCount.signal).then(
          () => undefined,
          (err: unknown) => err,
        );
        try {
          await this.uploadAll();
        } finally {
          stopCount.abort();
          const failed = await counting;
          if (failed !== undefined) throw failed;
        }
      } catch (err) {
        // The walk itself failed: with the device gone, that is a pulled drive, not a broken station.
        if (!(await this.driveRemoved())) throw err;
      }
      this.checkCanceled();
      if (this.stop === 'shutdown') return this.outcome({ kind: 'interrupted', reason: this.interruption! });
      if (this.stop === 'cancel') return await this.finish({ kind: 'canceled' });
      if (this.req.verify) await this.verify();
      return await this.finish({ kind: 'finished' });
    } finally {
      this.journal.flush();
      clearInterval(watcher);
      this.req.signal?.removeEventListener('abort', onAbort);
    }
  }

  private checkCanceled(): void {
    if (this.stop === undefined && this.station.store.find(this.job.id)?.jobStatus === 'Canceled') {
      this.log.info('job canceled: settling in-flight work');
      this.stop = 'cancel';
    }
  }

  private interrupt(reason: string): void {
    if (this.stop !== undefined) return;
    this.log.warn({ reason }, 'load interrupted; the job stays InProgress');
    this.stop = 'shutdown';
    this.interruption = reason;
  }

  private entries(): Generator<Entry> {
    // Synchronous calls: the count, walking ahead on its own thread, has just brought this metadata into the cache.
    return walk(this.req.root, { ignoresDir: (dir) => this.mapper.ignores(dir) });
  }

  /** A first pass over the metadata only, so progress can say "of how many"; on a thread of its own. */
  private async count(stop: AbortSignal): Promise<void> {
    const totals = await countDevice(this.req.root, this.manifest, stop);
    if (!totals) return;
    const { files, bytes } = totals;
    this.progress.setTotals(files, bytes);
    this.log.info({ files, bytes }, 'device walked');
  }

  private async uploadAll(): Promise<void> {
    const running = new Set<Promise<void>>();
    try {
      await this.walkAndStart(running);
    } finally {
      // Whatever ended the walk, the files already started settle before the load goes on.
      await Promise.all(running);
    }
    if (this.taskError !== undefined) throw this.taskError;
  }

  private async walkAndStart(running: Set<Promise<void>>): Promise<void> {
    let seq = 0;
    const claims = KeyClaims.for(this.manifest);
    for (const e of this.entries()) {
      if (this.stop) break;
      seq++;
      const earlier = this.journal.doneRow(e.path);
      if (earlier) {
        // Done in an earlier run: its key is still taken, for the files after it (when keys can collide at all).
        const before = claims.needed ? this.mapper.plan(e) : undefined;
        if (before && 'key' in before) claims.claim(before.key, e.text!);
        this.progress.fileDone(earlier.status, earlier.code);
        if (earlier.status === 200) this.progress.addBytes(e.size);
        continue;
      }
      const plan = this.mapper.plan(e);
      const file = displayPath(e.path, e.text) + (e.kind === 'unreadable-dir' ? '/' : '');
      const owner = 'key' in plan ? claims.claim(plan.key, e.text!) : undefined;
      if (owner !== undefined) {
        this.log.warn({ file, owner, key: (plan as { key: string }).key }, 'two files map to one key: the later one is not uploaded (KeyCollision)');
      }
      if ('row' in plan || owner !== undefined) {
        // An entry the walk could not look at is the drive's loss when the drive is gone (pulled while walked):
        // its row would end the file for good, and a resumed load would skip it.
        if (e.error !== undefined && (await this.driveRemoved())) break;
        const row = 'row' in plan ? plan.row : ROWS.keyCollision;
        this.record(e, seq, { at: Date.now(), file, ...row, key: '', md5: '', bytes: e.size, contentType: '' });
        continue;
      }
      const slot = await this.station.files.take(1);
      if (this.stop) {
        slot.give();
        break;
      }
      const task = this.uploadOne(e, seq, file, plan.key)
        .catch((err: unknown) => {
          // Not a file's outcome but the station's own failure: stop starting files, and report it once settled.
          this.taskError ??= err;
          this.interrupt(`internal error: ${(err as Error).message}`);
        })
        .finally(() => {
          slot.give();
          running.delete(task);
        });
      running.add(task);
    }
  }

  private async uploadOne(e: Entry, seq: number, file: string, key: string): Promise<void> {
    let result: UploadResult;
    try {
      result = await this.uploader.upload({ abs: this.abs(e.path), path: e.path, text: e.text!, seq, key, size: e.size });
    } catch (err) {
      if (err instanceof S3Unreachable) {
        this.interrupt(`S3 cannot be reached (${err.message})`);
        return;
      }
      throw err;
    }
    if (result.kind === 'stopped') return;
    // A read that failed, or found the file shorter than it was, may be the drive going away: then it is no row.
    if (result.kind === 'failed' && (result.code === 'DeviceReadError' || result.code === 'FileChanged') && (await this.driveRemoved())) return;
    const logKey = `${this.manifest.bucket}/${key}`;
    if (result.kind === 'stored') {
      this.record(e, seq, { at: Date.now(), file, ...ROWS.ok, key: logKey, md5: result.md5, bytes: result.size, contentType: result.contentType }, result.mtimeMs);
    } else {
      const { status, code, size, contentType, mtimeMs } = result;
      this.record(e, seq, { at: Date.now(), file, status, code, key: logKey, md5: '', bytes: size, contentType }, mtimeMs);
    }
  }

  private record(e: Entry, seq: number, row: LogRow, mtimeMs = e.mtimeMs): void {
    this.progress.lastFile = row.file;
    this.station.metrics?.fileDone(row.status, row.code);
    this.journal.recordRow(e.path, seq, mtimeMs, row);
    // Rows are committed in groups, but a multipart file's at once: a crash must not make it go up again.
    if (e.kind === 'file' && e.size >= this.station.config.upload.multipartThreshold) this.journal.flush();
    this.progress.fileDone(row.status, row.code);
  }

  /** A walked entry's absolute path, as bytes (its name may not be UTF-8). */
  private abs(path: Buffer): Buffer {
    return Buffer.concat([Buffer.from(this.req.root), Buffer.from('/'), path]);
  }

  /** Whether the drive is gone (its root cannot be listed); if so the load is interrupted, to resume when it is back. */
  private async driveRemoved(): Promise<boolean> {
    try {
      await stat(this.req.root);
      await readdir(this.req.root);
      return false;
    } catch {
      this.interrupt('the drive was removed: plug it back to resume');
      return true;
    }
  }

  /** Re-reads every stored file and compares its MD5 with the logged one; a difference is `409 FileChanged`. */
  private async verify(): Promise<void> {
    let checked = 0;
    let changed = 0;
    for (const f of this.journal.storedFiles()) {
      const md5 = await md5OfFile(this.abs(f.path), f.size).catch(() => undefined);
      checked++;
      if (md5 !== f.md5) {
        changed++;
        this.journal.markFileChanged(f.path);
        this.log.warn({ file: f.path.toString(), logged: f.md5, now: md5 ?? 'unreadable' }, 'verify: the file differs from what was stored');
      }
    }
    this.log.info({ checked, changed }, 'verify done');
  }

  /** Writes the import log, stores it in the log bucket, and ends the job. */
  private async finish(end: LoadEnd): Promise<LoadOutcome> {
    const { store } = this.station;
    // Rows first: a multipart file's row takes its upload out of the registry, which the sweep aborts.
    this.journal.flush();
    await abortAbandonedUploads(this.station.journalDb, this.station.s3, this.station.limit, this.log, this.job.id);
    await this.abortOrphans();
    const logFile = writeLocalLog(store.dataDir, this.job.id, this.journal.rows());
    const logKey = this.manifest.logPrefix + logName(this.job.id);
    const errorCount = this.journal.errorCount();
    try {
      const body = await readLogInto(logFile, (size) => this.station.memory.take(size));
      try {
        const md5 = await this.station.md5.digest(body.buffer);
        const logWriter = new ObjectWriter(this.station.s3, this.manifest.logBucket, this.station.limit, this.station.metrics?.request);
        await logWriter.put(logKey, body.buffer, md5, { ContentType: 'text/csv; charset=utf-8' });
      } finally {
        body.give();
      }
    } catch (err) {
      if (err instanceof S3Unreachable || err instanceof S3Refused) {
        this.interrupt(`the import log could not be stored in ${this.manifest.logBucket}: ${err.message}`);
        return this.outcome({ kind: 'interrupted', reason: this.interruption! }, logFile);
      }
      throw err;
    }
    // One transaction: the log's location, the end status and the notification e-mail it queues.
    const log = { logBucket: this.manifest.logBucket, logKey, errorCount };
    if (end.kind === 'finished') store.endLoad(this.job.id, log, errorCount > 0 ? 'CompletedWithErrors' : 'Completed', `${errorCount} errors`);
    else store.endLoad(this.job.id, log);
    this.log.info({ logBucket: this.manifest.logBucket, logKey, errorCount, end: end.kind }, 'load ended');
    return this.outcome(end, logFile);
  }

  private async abortOrphans(): Promise<void> {
    const began = this.station.store.history(this.job.id).find((h) => h.subject === 'job' && h.to === 'InProgress')?.at ?? Date.now();
    const bucket = `${this.manifest.bucket}/`;
    try {
      await abortOrphanedUploads(this.station.journalDb, this.writer, this.manifest.prefix, (key) => this.journal.hasKey(bucket + key), began, this.log);
    } catch (err) {
      // Not worth failing a finished load over: the uploads cost storage, not data, and a bucket lifecycle rule ends them.
      this.log.warn({ err: describe(err) }, 'could not look for orphaned multipart uploads');
    }
  }

  private outcome(end: LoadEnd, logFile?: string): LoadOutcome {
    return {
      job: this.station.store.get(this.job.id),
      end,
      errorCount: this.journal.errorCount(),
      progress: this.progress,
      ...(logFile !== undefined && { logFile }),
    };
  }
}

async function md5OfFile(abs: Buffer, size: number): Promise<string> {
  const src = await openSource(abs, size);
  try {
    const hash = createHash('md5');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let pos = 0, n; (n = await src.readAt(buf, buf.length, pos)) > 0; pos += n) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    await src.close();
  }
}
