/**
 * MD5 of the same bytes into several hashes in one pass: a multipart file's bytes need two MD5s, the part's
 * (its Content-MD5) and the whole file's, and hashing them one after another was most of a large load's CPU.
 *
 * MD5 is a chain of 64 dependent steps per 64-byte block, so one hash leaves most of a core idle waiting on the
 * step before. Here each hash is a lane of one 128-bit WebAssembly SIMD register (i32x4): the four lanes take the
 * same steps side by side, so up to four hashes cost about one pass. Lanes 0-1 read one stream of bytes and lanes
 * 2-3 another: two multipart files' parts, each into its own MD5 and its file's, go through in one pass
 * (`updatePair`). On this machine's cores: both MD5s of a part at 490-500 MiB/s of bytes, against 355 for two
 * passes of Node's (OpenSSL's) MD5, which stays the faster one for a single hash (about 710 MiB/s); two parts at
 * once, twice that (`npm run bench:md5`).
 *
 * The kernel is written here as WebAssembly bytes, from RFC 1321's tables, when first used: a hundred lines,
 * where a WAT file would need a tool chain at build time and the repo a binary.
 */

/** MD5's state for one hash, and the bytes that do not yet fill a block. */
export class Md5 {
  /** A, B, C, D */
  readonly words = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476);
  /** bytes taken in */
  length = 0;
  /** the last bytes taken in, after the last whole block: `length % 64` of them */
  readonly tail = new Uint8Array(64);

  /** Takes the bytes in. */
  update(data: Uint8Array): this {
    updateAll([this], data);
    return this;
  }

  /** The MD5 of everything taken in; the hash ends. */
  digest(): Buffer {
    const t = this.length % 64;
    // The padding: a 1 bit, zeros, and the length in bits as 64 bits little-endian, to a whole block.
    const pad = new Uint8Array(t < 56 ? 64 : 128);
    pad.set(this.tail.subarray(0, t));
    pad[t] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, (this.length % 2 ** 29) * 8, true);
    view.setUint32(pad.length - 4, Math.floor(this.length / 2 ** 29), true);
    kernel().blocks({ hashes: [this], data: pad });
    const out = Buffer.alloc(16);
    for (let j = 0; j < 4; j++) out.writeInt32LE(this.words[j]!, j * 4);
    return out;
  }
}

/** Bytes, and the hashes that take them in. */
interface Stream {
  hashes: Md5[];
  data: Uint8Array;
}

/** Takes the same bytes into every hash (at most 4), in one pass where their block boundaries agree. */
export function updateAll(hashes: Md5[], data: Uint8Array): void {
  const t = hashes[0]!.length % 64;
  if (hashes.some((h) => h.length % 64 !== t)) {
    // Never so in a load (parts are whole MiB); correct all the same, a pass per hash.
    for (const h of hashes) updateAll([h], data);
    return;
  }
  const at = t > 0 ? fillTails(hashes, data) : 0;
  const end = at + Math.floor((data.length - at) / 64) * 64;
  if (end > at) kernel().blocks({ hashes, data: data.subarray(at, end) });
  finish(hashes, data, end);
}

/**
 * Takes `a.data` into each of `a.hashes` and `b.data` into each of `b.hashes` (at most 2 each), in one pass over
 * both where every hash stands at a block boundary (a part's own hash and its file's, parts of whole MiB), else
 * one after the other.
 */
export function updatePair(a: Stream, b: Stream): void {
  if ([...a.hashes, ...b.hashes].some((h) => h.length % 64 !== 0)) {
    updateAll(a.hashes, a.data);
    updateAll(b.hashes, b.data);
    return;
  }
  const common = Math.min(Math.floor(a.data.length / 64), Math.floor(b.data.length / 64)) * 64;
  if (common > 0) kernel().blocks({ hashes: a.hashes, data: a.data.subarray(0, common) }, { hashes: b.hashes, data: b.data.subarray(0, common) });
  for (const h of [...a.hashes, ...b.hashes]) h.length += common;
  updateAll(a.hashes, a.data.subarray(common));
  updateAll(b.hashes, b.data.subarray(common));
}

/** Each hash finishes its own pending block with the first bytes; how many bytes that took. */
function fillTails(hashes: Md5[], data: Uint8Array): number {
  const t = hashes[0]!.length % 64;
  const n = Math.min(64 - t, data.length);
  for (const h of hashes) {
    h.tail.set(data.subarray(0, n), t);
    if (t + n === 64) kernel().blocks({ hashes: [h], data: h.tail });
  }
  return n;
}

/** The bytes after the last whole block wait in each hash's tail; the lengths move on. */
function finish(hashes: Md5[], data: Uint8Array, end: number): void {
  for (const h of hashes) {
    if (end < data.length) h.tail.set(data.subarray(end), 0);
    h.length += data.length;
  }
}

interface Kernel {
  /** Runs whole 64-byte blocks of `a.data` through lanes 0-1 (`a.hashes`) and of `b.data`, as long, through lanes
   * 2-3; without `b`, `a.hashes` may take all four lanes. */
  blocks(a: Stream, b?: Stream): void;
}

let compiled: Kernel | undefined;

// Node has WebAssembly; the ES2022 typings do not describe it: the little used here is described here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { blocks: (data: number, other: number, blocks: number) => void; memory: { buffer: ArrayBuffer } } };
};

/** Compiles the kernel now rather than at its first use: a hash thread does while it waits for its first body. */
export function prepareLanes(): void {
  kernel();
}

function kernel(): Kernel {
  if (compiled) return compiled;
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(md5Module()));
  const run = exports.blocks;
  const memory = new Uint8Array(exports.memory.buffer);
  const state = new Int32Array(memory.buffer, 0, 16);
  compiled = {
    blocks(a, b) {
      // word j of lane l at state[j * 4 + l]; unused lanes hash along for nothing
      const lanes: Array<Md5 | undefined> = b ? [a.hashes[0], a.hashes[1], b.hashes[0], b.hashes[1]] : a.hashes;
      lanes.forEach((h, l) => h?.words.forEach((w, j) => (state[j * 4 + l] = w)));
      for (let at = 0; at < a.data.length; at += CHUNK) {
        const n = Math.min(CHUNK, a.data.length - at);
        memory.set(a.data.subarray(at, at + n), DATA);
        if (b) memory.set(b.data.subarray(at, at + n), OTHER);
        run(DATA, b ? OTHER : DATA, n / 64);
      }
      lanes.forEach((h, l) => h?.words.forEach((_, j) => (h.words[j] = state[j * 4 + l]!)));
    },
  };
  return compiled;
}

/** Where the kernel's memory holds the data: after the state (4 words x 4 lanes); then the other stream's. */
const DATA = 64;
/** Bytes copied into the kernel's memory at a time: small enough to stay in a core's cache while hashed. */
const CHUNK = 64 * 1024;
const OTHER = DATA + CHUNK;

// RFC 1321: the constant, the message word and the rotation of each of the 64 steps.
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const ROTATE = [
  [7, 12, 17, 22],
  [5, 9, 14, 20],
  [4, 11, 16, 23],
  [6, 10, 15, 21],
];
const WORD = (i: number) => [i, (5 * i + 1) % 16, (3 * i + 5) % 16, (7 * i) % 16][i >> 4]!;

// The few WebAssembly instructions the kernel uses (https://webassembly.github.io/spec/core/binary/).
const localGet = (i: number) => [0x20, i];
const localSet = (i: number) => [0x21, i];
const i32Const = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)];
const load32Splat = (offset: number) => [...simd(0x09), 2, ...uleb(offset)];
const [NOT, AND, ANDNOT, OR, XOR] = [0x4d, 0x4e, 0x4f, 0x50, 0x51].map(simd) as [number[], number[], number[], number[], number[]];
const [SPLAT, SHL, SHR_U, ADD] = [0x11, 0xab, 0xad, 0xae].map(simd) as [number[], number[], number[], number[]];
/** i8x16.shuffle: lanes 0-1 of the first operand, lanes 2-3 of the second */
const LANES_01_23 = [...simd(0x0d), 0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27, 28, 29, 30, 31];

/**
 * `blocks(data, other, count)`: runs `count` blocks through the 4 lanes of state at address 0, lanes 0-1 reading
 * them at `data`, lanes 2-3 at `other`. Locals: 0 data, 1 other, 2 count, 3-6 A-D, 7-10 their values at the
 * block's start, 11 a step's sum before its rotation.
 */
function blocksFunction(): number[] {
  const [DATA_PTR, OTHER_PTR, COUNT, A, SAVED, SUM] = [0, 1, 2, 3, 7, 11];
  const c: number[] = [];
  for (let j = 0; j < 4; j++) c.push(...i32Const(0), ...v128Load(j * 16), ...localSet(A + j));
  c.push(0x02, 0x40, 0x03, 0x40); // block, loop
  c.push(...localGet(COUNT), 0x45, 0x0d, 1); // count == 0: out of the block
  for (let j = 0; j < 4; j++) c.push(...localGet(A + j), ...localSet(SAVED + j));
  let [a, b, cc, d] = [A, A + 1, A + 2, A + 3];
  for (let i = 0; i < 64; i++) {
    const s = ROTATE[i >> 4]![i & 3]!;
    // a + word + constant first: none of it waits for b, the value the step before made. The word: data's in
    // lanes 0-1, other's in lanes 2-3.
    const word = [...localGet(DATA_PTR), ...load32Splat(WORD(i) * 4), ...localGet(OTHER_PTR), ...load32Splat(WORD(i) * 4), ...LANES_01_23];
    c.push(...localGet(a), ...word, ...ADD, ...i32Const(K[i]!), ...SPLAT, ...ADD);
    // The round's function, written so that b comes in last (the shortest chain from one step to the next).
    const f = [
      [...localGet(cc), ...localGet(d), ...XOR, ...localGet(b), ...AND, ...localGet(d), ...XOR], // (b & c) | (~b & d)
      [...localGet(cc), ...localGet(d), ...ANDNOT, ...localGet(b), ...localGet(d), ...AND, ...OR], // (b & d) | (c & ~d)
      [...localGet(cc), ...localGet(d), ...XOR, ...localGet(b), ...XOR], // b ^ c ^ d
      [...localGet(cc), ...localGet(d), ...NOT, ...localGet(b), ...OR, ...XOR], // c ^ (b | ~d)
    ][i >> 4]!;
    c.push(...f, ...ADD, ...localSet(SUM));
    // rotate left by s, then + b
    c.push(...localGet(SUM), ...i32Const(s), ...SHL, ...localGet(SUM), ...i32Const(32 - s), ...SHR_U, ...OR);
    c.push(...localGet(b), ...ADD, ...localSet(a));
    [a, b, cc, d] = [d, a, b, cc];
  }
  for (let j = 0; j < 4; j++) c.push(...localGet(A + j), ...localGet(SAVED + j), ...ADD, ...localSet(A + j));
  for (const ptr of [DATA_PTR, OTHER_PTR]) c.push(...localGet(ptr), ...i32Const(64), 0x6a, ...localSet(ptr)); // += 64
  c.push(...localGet(COUNT), ...i32Const(1), 0x6b, ...localSet(COUNT)); // count -= 1
  c.push(0x0c, 0, 0x0b, 0x0b); // br loop; end loop; end block
  for (let j = 0; j < 4; j++) c.push(...i32Const(0), ...localGet(A + j), ...v128Store(j * 16));
  c.push(0x0b);
  const code = [1, 9, 0x7b, ...c]; // 9 locals of type v128
  return [...uleb(code.length), ...code];
}

function md5Module(): Uint8Array {
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  const pages = Math.ceil((OTHER + CHUNK) / 65536);
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0]), // type: (i32, i32, i32) -> ()
    ...section(3, [1, 0]), // one function of that type
    ...section(5, [1, 0, pages]), // memory
    ...section(7, [2, ...name('blocks'), 0, 0, ...name('memory'), 2, 0]),
    ...section(10, [1, ...blocksFunction()]),
  ]);
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const byte = n & 0x7f;
    n >>>= 7;
    out.push(n ? byte | 0x80 : byte);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}
