import type { Worker } from 'node:worker_threads';

/**
 * A worker thread started ahead of need and handed to the first taker. A thread takes a tenth of a second to load
 * its modules; started while the main thread loads its own, that time is spent on the other core instead of
 * after them (`station load` starts its S3 thread and a hash thread first thing). One that fails before it is
 * taken is forgotten: the taker then starts its own, and sees that one fail.
 */
export class SpareThread {
  private worker: Worker | undefined;

  constructor(private readonly spawn: () => Worker) {}

  start(): void {
    if (this.worker) return;
    const worker = this.spawn();
    worker.unref(); // a spare never keeps the process alive: a command that fails first still ends
    const forget = () => {
      if (this.worker === worker) this.worker = undefined;
    };
    worker.once('error', forget).once('exit', forget);
    this.worker = worker;
  }

  /** The spare thread, or a new one. */
  take(): Worker {
    const worker = this.worker ?? this.spawn();
    this.worker = undefined;
    return worker;
  }
}
