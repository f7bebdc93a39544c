/**
 * The station's memory for bodies: one block of shared memory the size of the budget, lent out in pieces. Every
 * body (a single PUT's whole file, a part) is a piece of it, so what the process holds for bodies is the budget,
 * however many files go by. Buffers allocated per body were freed only when the garbage collector found them,
 * which memory outside its heap does not prompt: on a drive of 32,000 files the station passed 1 GiB under a
 * 96 MiB budget. Shared memory, so the MD5 threads read a body without a copy.
 *
 * Small bodies (up to 1/64 of the budget: 1.5 MiB of 96) and the others are lent from two shares of the block, an
 * eighth and the rest, each with its own queue (`Arena`).
 */
export class BodyMemory {
  private block: Buffer | undefined;
  /** bodies up to `smallMax` bytes (small files), in a share of the block of their own */
  private readonly small: Arena;
  /** parts and larger files, in the rest */
  private readonly large: Arena;
  private readonly smallMax: number;
  private lent = 0;
  /** the most ever lent at once, for the benchmark's figures */
  peak = 0;

  constructor(readonly capacity: number) {
    // Small bodies have a share of their own: with one queue, the parts of two large files held the whole budget
    // while they waited for the hash threads, and the small files queued behind the next part waited as long;
    // on a drive of both, the small files then went up only after the large ones (a fifth longer in all).
    const share = Math.max(ALIGN, Math.floor(capacity / SMALL_SHARE / ALIGN) * ALIGN);
    this.smallMax = Math.max(ALIGN, Math.floor(share / 8 / ALIGN) * ALIGN);
    const block = () => (this.block ??= Buffer.from(new SharedArrayBuffer(capacity)));
    const counted = (size: number) => {
      this.lent += size;
      if (this.lent > this.peak) this.peak = this.lent;
    };
    this.small = new Arena(block, 0, share, counted);
    this.large = new Arena(block, share, capacity - share, counted);
  }

  /** bytes lent now */
  get inUse(): number {
    return this.lent;
  }

  /** Waits until `length` bytes can be lent, then lends a buffer of exactly that length. */
  take(length: number): Promise<Body> {
    const size = Math.max(ALIGN, Math.ceil(length / ALIGN) * ALIGN);
    return (size <= this.smallMax ? this.small : this.large).take(size, length);
  }
}

/**
 * A range of the block, lent out in pieces (first fit). Readers wait in order, so a large body is not starved by
 * a stream of smaller ones; a body larger than the whole range (a part of a file near 5 TiB) waits until nothing
 * of the range is lent, then gets memory of its own.
 */
class Arena {
  /** free extents, by offset (in the block), never touching each other */
  private readonly free: Array<{ offset: number; size: number }>;
  private readonly waiting: Array<{ size: number; grant: (body: Body) => void }> = [];
  private lent = 0;

  constructor(
    private readonly block: () => Buffer,
    start: number,
    private readonly capacity: number,
    /** told of every piece lent (+size) and returned (−size) */
    private readonly counted: (size: number) => void,
  ) {
    this.free = capacity > 0 ? [{ offset: start, size: capacity }] : [];
  }

  take(size: number, length: number): Promise<Body> {
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

  private carve(size: number): Body | undefined {
    const i = this.free.findIndex((f) => f.size >= size);
    if (i < 0) return undefined;
    const extent = this.free[i]!;
    const offset = extent.offset;
    if (extent.size === size) this.free.splice(i, 1);
    else this.free[i] = { offset: offset + size, size: extent.size - size };
    return this.lend(this.block().subarray(offset, offset + size), size, () => this.release(offset, size));
  }

  private alone(size: number): Body | undefined {
    if (this.lent > 0) return undefined;
    return this.lend(Buffer.from(new SharedArrayBuffer(size)), size, () => {});
  }

  private lend(buffer: Buffer, size: number, release: () => void): Body {
    this.lent += size;
    this.counted(size);
    let returned = false;
    return new Body(buffer, () => {
      if (returned) return;
      returned = true;
      this.lent -= size;
      this.counted(-size);
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
/** small bodies get 1/SMALL_SHARE of the block, and are those up to an eighth of that share */
const SMALL_SHARE = 8;
