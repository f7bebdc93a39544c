import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A thread's heap may grow this far past its size after the last full collection. */
const GROWTH_BYTES = 8 * 1024 * 1024;
const CHECK_MS = 1000;

let started = false;

/**
 * Keeps this thread's heap near its live size, so the station's memory does not grow with the size of a drive.
 * V8 runs a full collection early only on a thread that is sometimes idle; the station's main thread and its PUT
 * thread never are during a load, and V8 let their heaps grow long before collecting: on a drive 10x the mixed
 * bench drive the main thread's heap reached 68 MiB and the PUT thread's 35, with 14 and 6.5 MiB live, and peak
 * RSS grew by as much. A full collection each time the heap has grown 8 MiB past its size after the last one keeps
 * both flat (~10 ms each; nothing while the heap does not grow). Once per thread; the timer never keeps a process
 * alive.
 */
export function keepHeapNearLive(): void {
  if (started) return;
  started = true;
  // Node exposes V8's collector only behind --expose-gc; the flag, set now, exposes it in contexts made after.
  setFlagsFromString('--expose-gc');
  const gc = ((globalThis as { gc?: () => void }).gc ?? runInNewContext('gc')) as () => void;
  let after = getHeapStatistics().total_heap_size;
  setInterval(() => {
    if (getHeapStatistics().total_heap_size < after + GROWTH_BYTES) return;
    gc();
    after = getHeapStatistics().total_heap_size;
  }, CHECK_MS).unref();
}
