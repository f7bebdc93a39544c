import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { keepHeapNearLive } from '../heap.js';
import { openDb } from '../jobs/db.js';
import type { JobStore } from '../jobs/store.js';
import type { LoadMetrics } from '../metrics.js';
import { openS3 } from '../s3/open.js';
import { Budget } from './budget.js';
import { BodyMemory } from './buffers.js';
import type { Station } from './loader.js';
import { Md5Pool } from './md5-pool.js';

/**
 * The station's shared parts: one way to S3, and the budgets every load draws from: requests in flight, part
 * bytes in memory, and files open at once (enough to keep the request slots busy with small files, few enough
 * that the walk does not run far ahead).
 */
export function openStation(store: JobStore, config: Config, log: Logger, metrics?: LoadMetrics): Station {
  const { maxRequests, memoryBytes, maxAttempts } = config.upload;
  keepHeapNearLive();
  return {
    store,
    journalDb: openDb(store.dataDir, 'crash-safe'),
    config,
    s3: openS3(config.s3, { maxSockets: maxRequests + 4, maxAttempts }),
    limit: pLimit(maxRequests),
    memory: new BodyMemory(memoryBytes),
    md5: new Md5Pool(),
    files: new Budget(maxRequests * 2),
    multipartFiles: new Budget(2),
    log,
    ...(metrics && { metrics }),
  };
}

/** Lets go of what `openStation` holds: connections, threads, the journal's database connection. */
export async function closeStation(station: Station): Promise<void> {
  // Each thread takes some milliseconds to stop: stopped together.
  await Promise.all([station.s3.destroy(), station.md5.close()]);
  station.journalDb.close();
}
