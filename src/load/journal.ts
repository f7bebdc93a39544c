import type { Db } from '../jobs/db.js';
import type { LogRow } from '../importlog/format.js';

/**
 * The load journal in the station's database: for each file, its log row once it is done, or its multipart
 * upload while in flight with the parts S3 acknowledged. A row is written once per file, so a resumed load logs
 * each file exactly once; a part is recorded only after S3 acknowledged it.
 */

export interface PartRecord {
  partNumber: number;
  size: number;
  /** hex MD5 of the part's bytes */
  md5: string;
  etag: string;
}

export interface InFlightUpload {
  uploadId: string;
  key: string;
  partSize: number;
  size: number;
  mtimeMs: number;
}

interface RowRecord {
  seq: number;
  at: number;
  file: string;
  status: number;
  code: string;
  log_key: string;
  md5: string;
  size: number;
  content_type: string;
}

export class Journal {
  private readonly stmts;
  private pending: Array<{ path: Buffer; seq: number; mtimeMs: number; row: LogRow }> = [];
  private timer: NodeJS.Timeout | undefined;
  /** whether an earlier run left rows: a first run need not look up every file it walks */
  private readonly resumed: boolean;
  /** files (their paths, as latin1 strings) that have had a multipart upload in this job: only their rows have an
   * upload to take out of the registry and parts to drop, two statements a row that most rows need not run */
  private readonly uploaded: Set<string>;

  constructor(
    private readonly db: Db,
    readonly jobId: string,
  ) {
    this.resumed = db.prepare(`SELECT 1 FROM files WHERE job_id = ? AND state = 'done' LIMIT 1`).get(jobId) !== undefined;
    const pathsWithUploads = db.prepare(`SELECT path FROM files WHERE job_id = ? AND upload_id IS NOT NULL`).pluck().all(jobId) as Buffer[];
    this.uploaded = new Set(pathsWithUploads.map((p) => p.toString('latin1')));
    this.stmts = {
      done: db.prepare(`SELECT status, code FROM files WHERE job_id = ? AND path = ? AND state = 'done'`),
      putRow: db.prepare(
        `INSERT INTO files (job_id, path, seq, state, size, mtime_ms, at, file, status, code, log_key, md5, content_type)
         VALUES (@job, @path, @seq, 'done', @size, @mtime, @at, @file, @status, @code, @key, @md5, @contentType)
         ON CONFLICT(job_id, path) DO UPDATE SET state = 'done', seq = @seq, size = @size, mtime_ms = @mtime, at = @at,
           file = @file, status = @status, code = @code, log_key = @key, md5 = @md5, content_type = @contentType,
           upload_id = NULL, object_key = NULL, part_size = NULL`,
      ),
      hasKey: db.prepare('SELECT 1 FROM files WHERE job_id = ? AND log_key = ? LIMIT 1'),
      dropParts: db.prepare('DELETE FROM parts WHERE job_id = ? AND path = ?'),
      startUpload: db.prepare(
        `INSERT INTO files (job_id, path, seq, state, size, mtime_ms, upload_id, object_key, part_size)
         VALUES (?, ?, ?, 'uploading', ?, ?, ?, ?, ?)
         ON CONFLICT(job_id, path) DO UPDATE SET state = 'uploading', seq = excluded.seq, size = excluded.size,
           mtime_ms = excluded.mtime_ms, upload_id = excluded.upload_id, object_key = excluded.object_key,
           part_size = excluded.part_size`,
      ),
      upload: db.prepare(
        `SELECT upload_id, object_key, part_size, size, mtime_ms FROM files WHERE job_id = ? AND path = ? AND state = 'uploading'`,
      ),
      putPart: db.prepare(
        `INSERT OR REPLACE INTO parts (job_id, path, part_number, size, md5, etag) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      parts: db.prepare('SELECT part_number, size, md5, etag FROM parts WHERE job_id = ? AND path = ? ORDER BY part_number'),
      forgetUpload: db.prepare(`DELETE FROM files WHERE job_id = ? AND path = ? AND state = 'uploading'`),
      register: db.prepare('INSERT OR REPLACE INTO uploads (upload_id, job_id, bucket, object_key, created_at) VALUES (?, ?, ?, ?, ?)'),
      unregisterFileUpload: db.prepare(
        `DELETE FROM uploads WHERE upload_id = (SELECT upload_id FROM files WHERE job_id = ? AND path = ? AND upload_id IS NOT NULL)`,
      ),
      rows: db.prepare(
        `SELECT seq, at, file, status, code, log_key, md5, size, content_type FROM files WHERE job_id = ? AND state = 'done' ORDER BY seq, path`,
      ),
      fileChanged: db.prepare(`UPDATE files SET status = 409, code = 'FileChanged' WHERE job_id = ? AND path = ?`),
      errors: db.prepare(`SELECT count(*) AS n FROM files WHERE job_id = ? AND state = 'done' AND status >= 400`),
    };
  }

  /** The file's log row, if an earlier run of this job wrote it. */
  doneRow(path: Buffer): { status: number; code: string } | undefined {
    if (!this.resumed) return undefined;
    return this.stmts.done.get(this.jobId, path) as { status: number; code: string } | undefined;
  }

  /**
   * The file's row; a multipart upload it had is complete and leaves the registry in the same transaction.
   * Rows are committed in groups (every 250 rows or 100 ms): a commit per file was a tenth of the station's CPU on a
   * drive of small files. A crash loses at most the last group, whose files are then uploaded again on resume and
   * still get one row each.
   */
  recordRow(path: Buffer, seq: number, mtimeMs: number, row: LogRow): void {
    this.pending.push({ path, seq, mtimeMs, row });
    if (this.pending.length >= 250) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), 100).unref();
  }

  /** Commits the rows recorded so far. Every read of the rows flushes first. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.db.transaction(() => {
      for (const { path, seq, mtimeMs, row } of rows) {
        const hadUpload = this.uploaded.delete(path.toString('latin1'));
        if (hadUpload) this.stmts.unregisterFileUpload.run(this.jobId, path);
        this.stmts.putRow.run({
          job: this.jobId,
          path,
          seq,
          size: row.bytes,
          mtime: mtimeMs,
          at: row.at,
          file: row.file,
          status: row.status,
          code: row.code,
          key: row.key,
          md5: row.md5,
          contentType: row.contentType,
        });
        if (hadUpload) this.stmts.dropParts.run(this.jobId, path);
      }
    })();
  }

  /** A multipart upload begun: journaled for resume, and registered so that a crash cannot leave it unfound. */
  startUpload(path: Buffer, seq: number, bucket: string, upload: InFlightUpload): void {
    this.uploaded.add(path.toString('latin1'));
    this.db.transaction(() => {
      this.stmts.dropParts.run(this.jobId, path);
      this.stmts.startUpload.run(this.jobId, path, seq, upload.size, upload.mtimeMs, upload.uploadId, upload.key, upload.partSize);
      this.stmts.register.run(upload.uploadId, this.jobId, bucket, upload.key, Date.now());
    })();
  }

  uploadOf(path: Buffer): InFlightUpload | undefined {
    const r = this.stmts.upload.get(this.jobId, path) as
      | { upload_id: string; object_key: string; part_size: number; size: number; mtime_ms: number }
      | undefined;
    return r && { uploadId: r.upload_id, key: r.object_key, partSize: r.part_size, size: r.size, mtimeMs: r.mtime_ms };
  }

  recordPart(path: Buffer, part: PartRecord): void {
    this.stmts.putPart.run(this.jobId, path, part.partNumber, part.size, part.md5, part.etag);
  }

  parts(path: Buffer): PartRecord[] {
    const rows = this.stmts.parts.all(this.jobId, path) as Array<{ part_number: number; size: number; md5: string; etag: string }>;
    return rows.map((r) => ({ partNumber: r.part_number, size: r.size, md5: r.md5, etag: r.etag }));
  }

  /**
   * Forgets a file's multipart upload. `aborted`: S3 confirmed the abort, so it leaves the registry too;
   * otherwise it stays registered for the station's sweep to abort later.
   */
  forgetUpload(path: Buffer, aborted: boolean): void {
    this.db.transaction(() => {
      if (aborted) this.stmts.unregisterFileUpload.run(this.jobId, path);
      this.stmts.dropParts.run(this.jobId, path);
      this.stmts.forgetUpload.run(this.jobId, path);
    })();
  }

  markFileChanged(path: Buffer): void {
    this.flush();
    this.stmts.fileChanged.run(this.jobId, path);
  }

  /** The log rows in walk order; iterated from the database, never all held in memory. */
  *rows(): Generator<LogRow> {
    this.flush();
    for (const r of this.stmts.rows.iterate(this.jobId) as Iterable<RowRecord>) {
      yield { at: r.at, file: r.file, status: r.status, code: r.code, key: r.log_key, md5: r.md5, bytes: r.size, contentType: r.content_type };
    }
  }

  /**
   * The stored files with their MD5, for verify. Read a page at a time: the connection may not write while a
   * statement is being iterated, and verify marks rows as it goes.
   */
  *storedFiles(pageSize = 500): Generator<{ path: Buffer; md5: string; size: number }> {
    this.flush();
    const page = this.db.prepare(
      `SELECT seq, path, md5, size FROM files WHERE job_id = ? AND state = 'done' AND status = 200 AND (seq, path) > (?, ?)
       ORDER BY seq, path LIMIT ?`,
    );
    let after: { seq: number; path: Buffer } = { seq: -1, path: Buffer.alloc(0) };
    for (;;) {
      const rows = page.all(this.jobId, after.seq, after.path, pageSize) as Array<{ seq: number; path: Buffer; md5: string; size: number }>;
      yield* rows;
      if (rows.length < pageSize) return;
      after = rows.at(-1)!;
    }
  }

  /** Whether a row of this job names this object key (as `bucket/key`, as the log does). */
  hasKey(logKey: string): boolean {
    this.flush();
    return this.stmts.hasKey.get(this.jobId, logKey) !== undefined;
  }

  errorCount(): number {
    this.flush();
    return (this.stmts.errors.get(this.jobId) as { n: number }).n;
  }
}
