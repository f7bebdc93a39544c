import { Budget } from './budget.js';

/**
 * The station's memory for bodies: the budget of bytes held, and the buffers themselves, kept for the next body
 * instead of left to the garbage collector. Fresh buffers per body let the process grow far past the budget on a
 * drive of mid-sized files (shared memory is freed only when a collection finds it, which memory pressure from
 * outside the JavaScript heap does not prompt); reused ones keep it at the budget.
 *
 * Buffers live in shared memory, so the MD5 threads read them without a copy. Sizes are rounded up to a grid of
 * four steps per power of two (at most a quarter wasted), and the budget is charged the rounded size: it bounds
 * what the process really holds.
 */
export class BodyMemory {
  private readonly budget: Budget;
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  constructor(readonly capacity: number) {
    this.budget = new Budget(capacity);
  }

  /** bytes lent now */
  get inUse(): number {
    return this.budget.inUse;
  }

  /** the most ever held at once */
  get peak(): number {
    return this.budget.peak;
  }

  /** Waits until the budget allows `length` bytes, then lends a buffer of exactly that length. */
  async take(length: number): Promise<Body> {
    const size = roundUp(length);
    const lease = await this.budget.take(size);
    const whole = this.reuse(size) ?? Buffer.from(new SharedArrayBuffer(size));
    let returned = false;
    return {
      buffer: whole.subarray(0, length),
      give: () => {
        if (returned) return;
        returned = true;
        // kept before the bytes go back: giving them back hands them at once to a waiting reader, who then
        // finds this buffer ready instead of allocating another
        this.keep(size, whole);
        lease.give();
      },
    };
  }

  private reuse(size: number): Buffer | undefined {
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer) this.freeBytes -= size;
    return buffer;
  }

  /** Called while the buffer's bytes are still counted as lent: kept and lent together stay within the budget. */
  private keep(size: number, buffer: Buffer): void {
    // Buffers of other sizes make room; a buffer that still does not fit (one larger than the budget, lent
    // alone) is let go.
    while (this.freeBytes + this.budget.inUse > this.capacity && this.freeBytes > 0) this.dropOne();
    if (this.freeBytes + this.budget.inUse > this.capacity) return;
    const list = this.free.get(size) ?? [];
    list.push(buffer);
    this.free.set(size, list);
    this.freeBytes += size;
  }

  private dropOne(): void {
    for (const [size, list] of this.free) {
      if (list.pop() !== undefined) {
        this.freeBytes -= size;
        return;
      }
    }
  }
}

export interface Body {
  /** exactly the length asked for; do not keep it after `give()` */
  readonly buffer: Buffer;
  /** returns the buffer and its bytes to the station; a second call does nothing */
  give(): void;
}

/** The smallest grid size at least `n`: 4 KiB, then four steps per power of two (1, 1.25, 1.5, 1.75 × 2^k). */
export function roundUp(n: number): number {
  if (n <= 4096) return 4096;
  const power = 2 ** Math.floor(Math.log2(n));
  const step = power / 4;
  return Math.ceil(n / step) * step;
}
