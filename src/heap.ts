import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The main thread's heap may grow this far past its size after the last full collection. */
const GROWTH_BYTES = 4 * 1024 * 1024;
const CHECK_MS = 1000;

let started = false;

/**
 * Keeps the main thread's heap near its live size, so the station's memory does not grow with the size of a
 * drive. V8 runs a full collection early only on a thread that is sometimes idle, and the main thread never is
 * during a load: on a drive 10x the mixed bench drive its heap reached 68 MiB with 14 MiB live, and peak RSS grew
 * by as much. A full collection each time the heap has grown 4 MiB past its size after the last one keeps it flat
 * (a few collections of ~15 ms per load; none while the heap does not grow). Once per process; the timer never
 * keeps it alive.
 *
 * Only here: the same timer in the S3 thread (whose young generation is bounded instead, s3-thread.ts) made
 * loads of small files 15 % slower although it collected twice.
 */
export function keepHeapNearLive(): void {
  if (started) return;
  started = true;
  // Node exposes V8's collector only behind --expose-gc; the flag, set now, exposes it in contexts made after.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let after = getHeapStatistics().total_heap_size;
  setInterval(() => {
    if (getHeapStatistics().total_heap_size < after + GROWTH_BYTES) return;
    gc();
    after = getHeapStatistics().total_heap_size;
  }, CHECK_MS).unref();
}
