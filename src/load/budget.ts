/**
 * A budget of units taken and given back, waiting in order while it is spent. The station uses two: files open at
 * once, and multipart files at once (body bytes have `BodyMemory`, buffers.ts). Waiters are served in order, so a
 * large taker is not starved by a stream of small ones; one larger than the whole budget waits until nothing else
 * is held, then goes alone.
 */
export class Budget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];
  /** the most ever held at once, for the benchmark's figures */
  peak = 0;

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  async take(bytes: number): Promise<Lease> {
    if (this.waiting.length === 0 && this.fits(bytes)) this.grant(bytes);
    else await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    let returned = false;
    return {
      bytes,
      give: () => {
        if (returned) return;
        returned = true;
        this.used -= bytes;
        this.serve();
      },
    };
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.capacity || this.used === 0;
  }

  private grant(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.grant(next.bytes);
      next.grant();
    }
  }
}

export interface Lease {
  readonly bytes: number;
  /** returns the bytes to the budget; a second call does nothing */
  give(): void;
}
