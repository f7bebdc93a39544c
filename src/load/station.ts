import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { keepHeapNearLive } from '../heap.js';
import { openDb } from '../jobs/db.js';
import type { JobStore } from '../jobs/store.js';
import type { LoadMetrics } from '../metrics.js';
import { makeS3Client } from '../s3/client.js';
import { PutThread } from '../s3/put-thread.js';
import { Budget } from './budget.js';
import { BodyMemory } from './buffers.js';
import type { Station } from './loader.js';
import { Md5Pool } from './md5-pool.js';

/**
 * The station's shared parts: one S3 client, and the budgets every load draws from: requests in flight, part
 * bytes in memory, and files open at once (enough to keep the request slots busy with small files, few enough
 * that the walk does not run far ahead).
 */
export function openStation(store: JobStore, config: Config, log: Logger, metrics?: LoadMetrics): Station {
  const { maxRequests, memoryBytes, maxAttempts } = config.upload;
  const client = makeS3Client(config.s3, maxRequests + 4, maxAttempts);
  keepHeapNearLive();
  return {
    store,
    journalDb: openDb(store.dataDir, 'crash-safe'),
    config,
    client,
    ...(PutThread.usedFor(config.s3) && { directPut: new PutThread(client, { s3: config.s3, maxAttempts, maxSockets: maxRequests + 4 }) }),
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
  station.client.destroy();
  // Each thread takes some milliseconds to stop: stopped together.
  await Promise.all([station.directPut?.destroy(), station.md5.close()]);
  station.journalDb.close();
}
