import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { UploadSettings } from '../config.js';
import type { Manifest } from '../manifest/types.js';
import { S3Refused } from '../s3/errors.js';
import type { Budget } from './budget.js';
import type { BodyMemory } from './buffers.js';
import { contentHeadersFor, type ContentHeaders } from './content-type.js';
import type { Journal } from './journal.js';
import type { ObjectHeaders, ObjectWriter } from './objects.js';
import { partSizeFor } from './part-size.js';
import { DeviceReadError, FileChangedError, hasBytesAfter, openSource, type Source } from './read.js';
import type { Md5Pool, RunningMd5 } from './md5-pool.js';
import type { PartRecord } from './journal.js';

/** A regular file of the device on its way to S3. */
export interface FileToUpload {
  /** absolute path, as bytes */
  abs: Buffer;
  /** path relative to the device root, as bytes (the journal's key) */
  path: Buffer;
  text: string;
  seq: number;
  key: string;
  /** the size the walk saw, to choose how to read it */
  size: number;
}

export type UploadResult =
  | { kind: 'stored'; md5: string; size: number; contentType: string; mtimeMs: number }
  | { kind: 'failed'; status: number; code: string; size: number; contentType: string; mtimeMs: number; reason: string }
  /** the load is stopping (cancel, shutdown): the file gets no row */
  | { kind: 'stopped' };

export type StopReason = 'cancel' | 'shutdown';

export interface UploadContext {
  writer: ObjectWriter;
  memory: BodyMemory;
  /** multipart files in progress at once, for the whole station */
  multipartFiles: Budget;
  /** MD5s of bodies, off the main thread */
  md5: Md5Pool;
  journal: Journal;
  settings: UploadSettings;
  manifest: Manifest;
  log: Logger;
  stopReason(): StopReason | undefined;
  /** bytes S3 acknowledged, for progress */
  onBytes(n: number): void;
}

const md5Of = (buf: Buffer) => createHash('md5').update(buf).digest();
// XAmzContentSHA256Mismatch: the same fault on a body whose payload hash was signed.
const isBadDigest = (err: unknown) => err instanceof S3Refused && (err.code === 'BadDigest' || err.code === 'XAmzContentSHA256Mismatch');

/**
 * Uploads one file, reading it once: every body's Content-MD5 and the whole file's MD5 come from that read.
 * Below the multipart threshold the file is one body and one hash; above it, parts go up concurrently as the
 * memory budget allows, and a hash thread takes each part once for both its own MD5 and the whole file's. A
 * restarted load continues after the last part S3 holds; the whole-file MD5 of what was sent is rebuilt by
 * reading that part of the file again (locally: nothing is uploaded twice).
 */
export class FileUploader {
  constructor(private readonly ctx: UploadContext) {}

  async upload(f: FileToUpload): Promise<UploadResult> {
    let opened: Source;
    try {
      opened = await openSource(f.abs, f.size);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ELOOP') return this.failed(f, 104, 'NotRegularFile', 0, 0, 'became a symbolic link');
      return this.failed(f, 500, 'DeviceReadError', 0, 0, `${e.code ?? ''} ${e.message}`.trim());
    }
    // The content headers, once known, for the row of a file that fails after that.
    const known: { content?: ContentHeaders } = {};
    try {
      if (opened.size < this.ctx.settings.multipartThreshold) return await this.single(f, opened, known);
      known.content = await this.sniff(f, opened);
      // Few multipart files at once: one can already fill the memory budget with its parts, and a file waiting
      // for memory holds its journal entry and S3 upload open for nothing.
      const slot = await this.ctx.multipartFiles.take(1);
      try {
        return await this.multipart(f, opened, known.content);
      } finally {
        slot.give();
      }
    } catch (err) {
      const { size, mtimeMs } = opened;
      const { content } = known;
      if (err instanceof FileChangedError) return this.failed(f, 409, 'FileChanged', size, mtimeMs, err.message, content);
      if (err instanceof DeviceReadError) return this.failed(f, 500, 'DeviceReadError', size, mtimeMs, err.message, content);
      if (err instanceof S3Refused) return this.failed(f, err.status, err.code, size, mtimeMs, err.message, content);
      throw err;
    } finally {
      await opened.close().catch(() => {});
    }
  }

  private failed(f: FileToUpload, status: number, code: string, size: number, mtimeMs: number, reason: string, content?: ContentHeaders): UploadResult {
    this.ctx.log.warn({ file: f.text, status, code, reason }, 'file not stored');
    return { kind: 'failed', status, code, size, mtimeMs, reason, contentType: content?.contentType ?? '' };
  }

  /** A multipart upload's content headers need the file's first bytes (gzip's magic) before its first part. */
  private async sniff(f: FileToUpload, o: Source): Promise<ContentHeaders> {
    const head = Buffer.alloc(2);
    const n = await this.read(f, o, head, Math.min(2, o.size), 0);
    return contentHeadersFor(this.ctx.manifest, f.text, head.subarray(0, n));
  }

  private async single(f: FileToUpload, o: Source, known: { content?: ContentHeaders }): Promise<UploadResult> {
    const lease = await this.ctx.memory.take(o.size);
    try {
      const body = lease.buffer;
      await this.readExact(f, o, body, o.size, 0);
      // A file that grew since it was opened has bytes past the size it had (checked apart, so a body takes
      // exactly its size from the station's memory).
      if (await hasBytesAfter(o, o.size)) throw new FileChangedError(f.text, 'it grew');
      const content = contentHeadersFor(this.ctx.manifest, f.text, body);
      known.content = content;
      const md5 = await this.ctx.md5.digest(body);
      await this.checkUnchanged(f, o);
      const headers = this.headers(content, o.mtimeMs);
      let etag: string;
      try {
        etag = await this.ctx.writer.put(f.key, body, md5, headers);
      } catch (err) {
        if (!isBadDigest(err)) throw err;
        // S3 received other bytes than were hashed: read the file again rather than resend a suspect buffer.
        this.ctx.log.warn({ file: f.text }, 'BadDigest: reading the file again');
        await this.readExact(f, o, body, o.size, 0);
        if (!md5Of(body).equals(md5)) throw new FileChangedError(f.text, 'its content differs on a second read');
        etag = await this.ctx.writer.put(f.key, body, md5, headers);
      }
      this.ctx.onBytes(o.size);
      const hex = md5.toString('hex');
      if (etag !== hex) return this.failed(f, 500, 'ETagMismatch', o.size, o.mtimeMs, `S3 answered ETag ${etag}, the file's MD5 is ${hex}`, content);
      return { kind: 'stored', md5: hex, size: o.size, contentType: content.contentType, mtimeMs: o.mtimeMs };
    } finally {
      lease.give();
    }
  }

  private async multipart(f: FileToUpload, o: Source, content: ContentHeaders): Promise<UploadResult> {
    const { writer, journal } = this.ctx;
    const partSize = partSizeFor(o.size, this.ctx.settings.partSize);
    const count = Math.ceil(o.size / partSize);

    const resumed = await this.resume(f, o, partSize, count);
    // The upload is created while the first parts are read and hashed: its round trip is not in their way (on a
    // real link tens of milliseconds per file, and at the start of a load the wait for the S3 thread).
    const uploadId = resumed
      ? Promise.resolve(resumed.uploadId)
      : writer.create(f.key, this.headers(content, o.mtimeMs)).then((id) => {
          journal.startUpload(f.path, f.seq, writer.bucket, { uploadId: id, key: f.key, partSize, size: o.size, mtimeMs: o.mtimeMs });
          return id;
        });
    uploadId.catch(() => {}); // its failure is the file's: taken by the first part that waits for it, or in sendParts
    // The whole-file MD5 runs on a hash thread, which hashes each part for both its own MD5 and the file's.
    const whole = resumed?.whole ?? this.ctx.md5.running();
    try {
      const partMd5s = resumed?.partMd5s ?? [];
      const etags = resumed?.etags ?? [];
      return await this.sendParts(f, o, content, { uploadId, partSize, count, partMd5s, etags, whole });
    } finally {
      whole.close();
    }
  }

  private async sendParts(
    f: FileToUpload,
    o: Source,
    content: ContentHeaders,
    /** `partMd5s` and `etags` hold the parts an earlier run sent (resumed), and the sending goes on after them */
    u: { uploadId: Promise<string>; partSize: number; count: number; partMd5s: Buffer[]; etags: string[]; whole: RunningMd5 },
  ): Promise<UploadResult> {
    const { writer, journal } = this.ctx;
    const { partSize, count, partMd5s, etags, whole } = u;
    let failure: unknown;
    const inFlight = new Set<Promise<void>>();
    for (let n = partMd5s.length + 1; n <= count && failure === undefined && !this.ctx.stopReason(); n++) {
      const offset = (n - 1) * partSize;
      const length = Math.min(partSize, o.size - offset);
      // The last part takes only its own length: a file just past a whole number of parts held a whole part
      // size of the budget for a few bytes.
      const lease = await this.ctx.memory.take(length);
      if (failure !== undefined || this.ctx.stopReason()) {
        lease.give();
        break;
      }
      const body = lease.buffer;
      try {
        await this.readExact(f, o, body, length, offset);
      } catch (err) {
        lease.give();
        failure = err;
        break;
      }
      const sent = whole
        .next(body)
        .then(async (md5) => {
          partMd5s[n - 1] = md5;
          const etag = await this.sendPart(f, o, await u.uploadId, n, body, md5, offset);
          etags[n - 1] = etag;
          // Journaled only once S3 holds the part.
          journal.recordPart(f.path, { partNumber: n, size: length, md5: md5.toString('hex'), etag });
          this.ctx.onBytes(length);
        })
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => {
          lease.give();
          inFlight.delete(sent);
        });
      inFlight.add(sent);
    }
    await Promise.all(inFlight);
    let uploadId: string | undefined;
    try {
      uploadId = await u.uploadId;
    } catch (err) {
      failure ??= err;
    }

    if (failure === undefined && this.ctx.stopReason()) {
      // Canceled: the upload is dropped. Shutting down: it stays, journaled, for the next run to continue.
      if (this.ctx.stopReason() === 'cancel') await this.drop(f, uploadId!);
      return { kind: 'stopped' };
    }
    try {
      if (failure !== undefined || uploadId === undefined) throw failure;
      if (await hasBytesAfter(o, o.size)) throw new FileChangedError(f.text, 'it grew');
      await this.checkUnchanged(f, o);
      const multipartEtag = `${md5Of(Buffer.concat(partMd5s)).toString('hex')}-${count}`;
      let etag = await this.complete(f, uploadId, etags, multipartEtag);
      if (etag === '') etag = (await writer.head(f.key)).etag; // radosgw answers Complete with an empty ETag
      const md5 = await whole.digest();
      // S3's multipart ETag is md5(part md5s)-N; a server that gives the whole file's MD5 instead is checked against that.
      if (etag !== multipartEtag && etag !== md5) {
        return this.failed(f, 500, 'ETagMismatch', o.size, o.mtimeMs, `S3 answered ETag ${etag}, expected ${multipartEtag}`, content);
      }
      return { kind: 'stored', md5, size: o.size, contentType: content.contentType, mtimeMs: o.mtimeMs };
    } catch (err) {
      if (uploadId !== undefined) await this.drop(f, uploadId);
      throw err;
    }
  }

  /**
   * Completes an upload. When the answer to a Complete is lost (a reset, a timeout), the SDK tries again and S3
   * no longer knows the upload (404 NoSuchUpload): the object it made is there, recognised by its ETag.
   */
  private async complete(f: FileToUpload, uploadId: string, etags: string[], multipartEtag: string): Promise<string> {
    try {
      return await this.ctx.writer.complete(f.key, uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
    } catch (err) {
      if (!(err instanceof S3Refused && err.status === 404)) throw err;
      const stored = await this.ctx.writer.head(f.key).catch(() => undefined);
      if (stored?.etag !== multipartEtag) throw err;
      this.ctx.log.info({ file: f.text, uploadId }, 'Complete answered NoSuchUpload, and the object is there: an earlier try completed it');
      return stored.etag;
    }
  }

  /**
   * Continues a multipart upload an earlier run of this job started, after the last part that both the journal
   * and S3 (ListParts) hold. The whole-file MD5 of those parts is rebuilt by reading them again, and each part
   * read must have the MD5 S3 holds for it. A file that changed since, or an upload S3 no longer knows, starts
   * again.
   */
  private async resume(
    f: FileToUpload,
    o: Source,
    partSize: number,
    count: number,
  ): Promise<{ uploadId: string; partMd5s: Buffer[]; etags: string[]; whole: RunningMd5 } | undefined> {
    const prior = this.ctx.journal.uploadOf(f.path);
    if (!prior) return undefined;
    const same = prior.size === o.size && prior.mtimeMs === o.mtimeMs && prior.key === f.key && prior.partSize === partSize;
    const held = same ? await this.ctx.writer.listParts(f.key, prior.uploadId) : undefined;
    const sent: PartRecord[] = [];
    if (held) {
      // Parts are acknowledged out of order: the upload continues after the unbroken run from part 1.
      for (const part of this.ctx.journal.parts(f.path)) {
        if (part.partNumber !== sent.length + 1 || part.partNumber > count || held.get(part.partNumber)?.etag !== part.etag) break;
        sent.push(part);
      }
    }
    const whole = held && (await this.rehash(f, o, partSize, sent));
    if (!whole) {
      const reason = !same ? 'the file changed' : !held ? 'S3 no longer has the upload' : 'the part of the file already sent reads differently now';
      this.ctx.log.info({ file: f.text, reason }, 'starting the upload again');
      await this.drop(f, prior.uploadId);
      return undefined;
    }
    this.ctx.onBytes(sent.length * partSize);
    this.ctx.log.info({ file: f.text, uploadId: prior.uploadId, partsHeld: sent.length, of: count }, 'resuming a multipart upload');
    return { uploadId: prior.uploadId, partMd5s: sent.map((p) => Buffer.from(p.md5, 'hex')), etags: sent.map((p) => p.etag), whole };
  }

  /**
   * Reads the parts already sent again, in order, into a fresh whole-file MD5; a part is hashed while the next
   * one is read. Undefined, and the hash let go, when a part's MD5 is not the one S3 holds.
   */
  private async rehash(f: FileToUpload, o: Source, partSize: number, sent: PartRecord[]): Promise<RunningMd5 | undefined> {
    const whole = this.ctx.md5.running();
    const checks: Array<Promise<boolean>> = [];
    let same = true;
    let kept = false;
    try {
      for (const part of sent) {
        if (checks.length >= 2) same = (await checks.shift()!) && same;
        if (!same) break;
        const lease = await this.ctx.memory.take(part.size);
        try {
          await this.readExact(f, o, lease.buffer, part.size, (part.partNumber - 1) * partSize);
        } catch (err) {
          lease.give();
          throw err;
        }
        // Read one after another, so the whole-file hash takes the parts in order.
        const check = whole.next(lease.buffer).then((md5) => md5.toString('hex') === part.md5);
        checks.push(check.finally(() => lease.give()));
      }
      while (checks.length > 0) same = (await checks.shift()!) && same;
      kept = same;
      return same ? whole : undefined;
    } finally {
      if (!kept) {
        await Promise.allSettled(checks);
        whole.close();
      }
    }
  }

  private async sendPart(f: FileToUpload, o: Source, uploadId: string, n: number, body: Buffer, md5: Buffer, offset: number): Promise<string> {
    let etag: string;
    try {
      etag = await this.ctx.writer.part(f.key, uploadId, n, body, md5);
    } catch (err) {
      if (!isBadDigest(err)) throw err;
      this.ctx.log.warn({ file: f.text, part: n }, 'BadDigest: reading the part again');
      await this.readExact(f, o, body, body.length, offset);
      if (!md5Of(body).equals(md5)) throw new FileChangedError(f.text, `part ${n} differs on a second read`);
      etag = await this.ctx.writer.part(f.key, uploadId, n, body, md5);
    }
    const hex = md5.toString('hex');
    if (etag !== hex) throw new S3Refused(500, 'ETagMismatch', `part ${n}: S3 answered ETag ${etag}, its MD5 is ${hex}`);
    return etag;
  }

  /** Aborts an upload and forgets it; an abort that fails is logged, and the station's sweep retries it later. */
  private async drop(f: FileToUpload, uploadId: string): Promise<void> {
    let aborted = false;
    try {
      await this.ctx.writer.abort(f.key, uploadId);
      aborted = true;
    } catch (err) {
      this.ctx.log.warn({ file: f.text, uploadId, err: (err as Error).message }, 'could not abort a multipart upload');
    }
    this.ctx.journal.forgetUpload(f.path, aborted);
  }

  private async read(f: FileToUpload, o: Source, buf: Buffer, length: number, position: number): Promise<number> {
    try {
      return await o.readAt(buf, length, position);
    } catch (err) {
      throw new DeviceReadError(f.text, err as NodeJS.ErrnoException);
    }
  }

  private async readExact(f: FileToUpload, o: Source, buf: Buffer, length: number, position: number): Promise<void> {
    const n = await this.read(f, o, buf, length, position);
    if (n < length) throw new FileChangedError(f.text, `it ended at ${position + n} bytes, not ${o.size}`);
  }

  private async checkUnchanged(f: FileToUpload, o: Source): Promise<void> {
    const st = await o.stat();
    if (st.size !== o.size || st.mtimeMs !== o.mtimeMs) {
      throw new FileChangedError(f.text, `size ${o.size} -> ${st.size}, modified ${new Date(st.mtimeMs).toISOString()}`);
    }
  }

  private headers(content: ContentHeaders, mtimeMs: number): ObjectHeaders {
    const m = this.ctx.manifest;
    const metadata: Record<string, string> = Object.fromEntries(m.staticMetadata);
    if (m.diskTimestampMetadataKey) metadata[m.diskTimestampMetadataKey] = new Date(mtimeMs).toISOString();
    return {
      ContentType: content.contentType,
      ...(content.contentEncoding && { ContentEncoding: content.contentEncoding }),
      ...(m.acl !== 'private' && { ACL: m.acl }),
      ...(m.cacheControl && { CacheControl: m.cacheControl }),
      ...(m.contentDisposition && { ContentDisposition: m.contentDisposition }),
      ...(m.contentLanguage && { ContentLanguage: m.contentLanguage }),
      ...(m.expires && { Expires: new Date(m.expires) }),
      ...(m.storageClass && { StorageClass: m.storageClass }),
      ...(Object.keys(metadata).length > 0 && { Metadata: metadata }),
    };
  }
}
