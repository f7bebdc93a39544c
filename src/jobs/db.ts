import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StationError, Exit, describe } from '../errors.js';

/**
 * The station's database file and its schema. Each migration runs once, in order, in its own transaction;
 * `PRAGMA user_version` records how far the file has come, so an older file is brought forward on open and a
 * newer one (written by a later station) is refused rather than misread.
 */
const MIGRATIONS: string[] = [
  // 1: accounts, jobs, and the history of every status change
  `
  CREATE TABLE accounts (
    access_key_id TEXT PRIMARY KEY,
    secret_key    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
  );
  CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    job_status        TEXT NOT NULL,
    device_status     TEXT NOT NULL,
    access_key_id     TEXT NOT NULL REFERENCES accounts(access_key_id),
    original_manifest BLOB NOT NULL,
    current_manifest  BLOB NOT NULL,
    log_bucket        TEXT,
    log_key           TEXT,
    error_count       INTEGER,
    carrier           TEXT,
    tracking_number   TEXT,
    reason            TEXT
  );
  CREATE TABLE job_history (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL REFERENCES jobs(id),
    at      INTEGER NOT NULL,
    subject TEXT NOT NULL CHECK (subject IN ('job', 'device', 'manifest')),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note    TEXT
  );
  CREATE INDEX job_history_by_job ON job_history(job_id, id);
  `,
  // 2: the load journal: a row per file once it is done, and the multipart upload of a file in flight with the
  // parts S3 acknowledged, so a load resumes where it stopped
  `
  CREATE TABLE files (
    job_id       TEXT NOT NULL REFERENCES jobs(id),
    path         BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('done', 'uploading')),
    size         INTEGER NOT NULL,
    mtime_ms     REAL NOT NULL,
    at           INTEGER,
    file         TEXT,
    status       INTEGER,
    code         TEXT,
    log_key      TEXT,
    md5          TEXT,
    content_type TEXT,
    upload_id    TEXT,
    object_key   TEXT,
    part_size    INTEGER,
    PRIMARY KEY (job_id, path)
  );
  CREATE INDEX files_by_seq ON files(job_id, seq);
  CREATE TABLE parts (
    job_id      TEXT NOT NULL,
    path        BLOB NOT NULL,
    part_number INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    md5         TEXT NOT NULL,
    etag        TEXT NOT NULL,
    md5_state   BLOB, -- no longer written: the whole-file MD5 is rebuilt on resume by reading the sent parts
    PRIMARY KEY (job_id, path, part_number),
    FOREIGN KEY (job_id, path) REFERENCES files(job_id, path) ON DELETE CASCADE
  );
  `,
  // 3: every multipart upload the station started and has not yet completed or aborted, so that one left behind
  // by a crash is found and aborted; and notes on a job (warnings a person should see in its status)
  `
  CREATE TABLE uploads (
    upload_id  TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    bucket     TEXT NOT NULL,
    object_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE job_notes (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    at     INTEGER NOT NULL,
    text   TEXT NOT NULL
  );
  `,
  // 4: the outbox of notification e-mail: a message is queued in the same transaction as the job's end status
  // (so a crash cannot lose it) and stays until the SMTP server accepted it; attempts and the last error show why
  // one is late
  `
  CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES jobs(id),
    job_status      TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    queued_at       INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'undeliverable')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER
  );
  CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
export const DB_FILE = 'station.db';

export type Db = Database.Database;

/**
 * Opens the database file. `durability: 'full'` (status changes) syncs every commit to disk; 'crash-safe' (the
 * load journal, a commit per file) survives the process being killed but may lose the last commits to a power
 * cut, which then only means those few files are uploaded again.
 */
export function openDb(dataDir: string, durability: 'full' | 'crash-safe' = 'full'): Db {
  let db: Db;
  try {
    // Only the station's user may read the data directory: it holds the accounts' secret keys.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    db = new Database(join(dataDir, DB_FILE));
  } catch (err) {
    throw new StationError('DataDirUnusable', `cannot open the job store in ${dataDir}: ${describe(err)}`, Exit.usage, { cause: err });
  }
  chmodSync(join(dataDir, DB_FILE), 0o600);
  db.pragma('journal_mode = WAL');
  // FULL: a status change is on disk before anything acts on it, power cut included.
  db.pragma(durability === 'full' ? 'synchronous = FULL' : 'synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // The daemon and operator commands share the file.
  db.pragma('busy_timeout = 10000');
  // better-sqlite3 builds SQLite with a 16 MB page cache per connection, and a load's journal fills it as the
  // database grows: the station's memory grew ~0.6 MiB a second through a load of 32,020 files (~600 bytes a
  // file, 16 MiB per connection at the end). Rows are appended in walk order and looked up one by one on a
  // resume; the operating system's page cache holds the file anyway.
  db.pragma('cache_size = -2048');
  migrate(db, dataDir);
  return db;
}

function migrate(db: Db, dataDir: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new StationError(
      'DataDirUnusable',
      `the job store in ${dataDir} has schema ${version}, newer than this station's ${SCHEMA_VERSION}: upgrade the station`,
      Exit.usage,
    );
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
