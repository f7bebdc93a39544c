/**
 * The station's memory for bodies: one block of shared memory the size of the budget, lent out in pieces. Every
 * body (a single PUT's whole file, a part) is a piece of it, so what the process holds for bodies is the budget,
 * however many files go by. Buffers allocated per body were freed only when the garbage collector found them,
 * which memory outside its heap does not prompt: on a drive of 32,000 files the station passed 1 GiB under a
 * 96 MiB budget. Shared memory, so the MD5 threads read a body without a copy.
 *
 * Readers wait in order (a large body is not starved by a stream of small ones) until a piece that size is free.
 * A body larger than the whole block (a part of a file near 5 TiB) waits until nothing is lent, then gets memory
 * of its own.
 */
export class BodyMemory {
  private block: Buffer | undefined;
  /** free extents of the block, by offset, never touching each other */
  private free: Array<{ offset: number; size: number }>;
  private readonly waiting: Array<{ size: number; grant: (body: Body) => void }> = [];
  private lent = 0;
  /** the most ever lent at once, for the benchmark's figures */
  peak = 0;

  constructor(readonly capacity: number) {
    this.free = [{ offset: 0, size: capacity }];
  }

  /** bytes lent now */
  get inUse(): number {
    return this.lent;
  }

  /** Waits until `length` bytes can be lent, then lends a buffer of exactly that length. */
  take(length: number): Promise<Body> {
    const size = Math.max(ALIGN, Math.ceil(length / ALIGN) * ALIGN);
    return new Promise((resolve) => {
      this.waiting.push({ size, grant: (body) => resolve(body.length === length ? body : body.slice(length)) });
      this.serve();
    });
  }

  private serve(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      const body = next.size > this.capacity ? this.alone(next.size) : this.carve(next.size);
      if (body === undefined) return;
      this.waiting.shift();
      next.grant(body);
    }
  }

  /** A piece of the block, first fit. */
  private carve(size: number): Body | undefined {
    const i = this.free.findIndex((f) => f.size >= size);
    if (i < 0) return undefined;
    const extent = this.free[i]!;
    const offset = extent.offset;
    if (extent.size === size) this.free.splice(i, 1);
    else this.free[i] = { offset: offset + size, size: extent.size - size };
    this.block ??= Buffer.from(new SharedArrayBuffer(this.capacity));
    return this.lend(this.block.subarray(offset, offset + size), size, () => this.release(offset, size));
  }

  /** Memory of its own for a body larger than the block, once nothing else is lent. */
  private alone(size: number): Body | undefined {
    if (this.lent > 0) return undefined;
    return this.lend(Buffer.from(new SharedArrayBuffer(size)), size, () => {});
  }

  private lend(buffer: Buffer, size: number, release: () => void): Body {
    this.lent += size;
    if (this.lent > this.peak) this.peak = this.lent;
    let returned = false;
    return new Body(buffer, () => {
      if (returned) return;
      returned = true;
      this.lent -= size;
      release();
      this.serve();
    });
  }

  /** Puts an extent back, joined with the free extents it touches. */
  private release(offset: number, size: number): void {
    let i = 0;
    while (i < this.free.length && this.free[i]!.offset < offset) i++;
    this.free.splice(i, 0, { offset, size });
    const next = this.free[i + 1];
    if (next && offset + size === next.offset) {
      this.free[i] = { offset, size: size + next.size };
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.offset + prev.size === offset) {
      prev.size += this.free[i]!.size;
      this.free.splice(i, 1);
    }
  }
}

/** A body's memory, lent by `BodyMemory.take`. */
export class Body {
  constructor(
    /** exactly the length asked for; not to be kept after `give()` */
    readonly buffer: Buffer,
    /** returns the memory to the station; a second call does nothing */
    readonly give: () => void,
  ) {}

  get length(): number {
    return this.buffer.length;
  }

  /** The same memory, seen as its first `length` bytes. */
  slice(length: number): Body {
    return new Body(this.buffer.subarray(0, length), this.give);
  }
}

/** Pieces are whole pages: the block stays in few extents, and a body never shares a page with another. */
const ALIGN = 4096;
