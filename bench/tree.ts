/**
 * Builds a benchmark tree deterministically, or reuses it when its manifest (kept beside the tree, not in it,
 * so that no tool uploads it) and every file's size still match.
 *
 *   node --import tsx bench/tree.ts [NAME|SPEC] [DIR]
 *   NAME: mixed (default; 2×128 MiB + 200×1 MiB + 3,000×16 KiB), large (4×256 MiB),
 *         small (a quick check: 1×24 MiB + 20×1 MiB + 300×16 KiB), smallfiles (10,000×16 KiB)
 *   SPEC: a custom list such as "2x128M,200x1M,3000x16K" (suffixes K, M, G = KiB, MiB, GiB; none = bytes)
 *   DIR : default .bench/tree-NAME
 *
 * Content is pseudo-random (seeded xorshift pool, rotated per file and stamped with the file's index), so no two
 * files or chunks are equal and nothing compresses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface TreeGroup {
  count: number;
  size: number;
  dir: string; // sub-folder of the tree for this group
}

export interface TreeSpec {
  name: string;
  groups: TreeGroup[];
}

export interface TreeFile {
  rel: string;
  size: number;
}

export interface Tree {
  name: string;
  dir: string;
  files: number;
  bytes: number;
  list: TreeFile[];
  reused: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const PRESETS: Record<string, string> = {
  mixed: '2x128M,200x1M,3000x16K',
  large: '4x256M',
  small: '1x24M,20x1M,300x16K',
  smallfiles: '10000x16K',
};

const FORMAT_VERSION = 1;
const FILES_PER_DIR = 500;

function sizeLabel(size: number): string {
  if (size % GiB === 0) return `${size / GiB}G`;
  if (size % MiB === 0) return `${size / MiB}M`;
  if (size % KiB === 0) return `${size / KiB}K`;
  return `${size}B`;
}

export function parseSpec(nameOrSpec: string): TreeSpec {
  const preset = PRESETS[nameOrSpec];
  const text = preset ?? nameOrSpec;
  const groups: TreeGroup[] = [];
  for (const item of text.split(/[,+]/)) {
    const m = /^\s*(\d+)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*$/i.exec(item);
    if (m === null) {
      throw new Error(
        `bad tree ${JSON.stringify(nameOrSpec)}: use one of ${Object.keys(PRESETS).join(', ')} or a spec like 2x128M,200x1M,3000x16K`,
      );
    }
    const unit = { '': 1, K: KiB, M: MiB, G: GiB }[m[3]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
    const size = Math.round(Number(m[2]) * unit);
    const count = Number(m[1]);
    if (count > 0) groups.push({ count, size, dir: `${sizeLabel(size)}-files` });
  }
  if (groups.length === 0) throw new Error(`tree ${JSON.stringify(nameOrSpec)} has no files`);
  const name = preset !== undefined ? nameOrSpec : text.replace(/[^0-9A-Za-z]+/g, '_');
  return { name, groups };
}

export function listFiles(spec: TreeSpec): TreeFile[] {
  const out: TreeFile[] = [];
  for (const g of spec.groups) {
    const width = String(g.count - 1).length;
    for (let i = 0; i < g.count; i++) {
      const sub = g.count > FILES_PER_DIR ? `/d${String(Math.floor(i / FILES_PER_DIR)).padStart(3, '0')}` : '';
      out.push({ rel: `${g.dir}${sub}/f${String(i).padStart(width, '0')}.bin`, size: g.size });
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------- content

const POOL_SIZE = 8 * MiB;
const CHUNK = 1 * MiB;

function makePool(): Buffer {
  // xorshift128 seeded with constants: deterministic across runs and machines.
  const words = new Uint32Array(POOL_SIZE / 4);
  let x = 0x12345678,
    y = 0x9abcdef0,
    z = 0xdeadbeef,
    w = 0x0badf00d;
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  return Buffer.from(words.buffer);
}

function writeFile(file: string, size: number, index: number, pool: Buffer, scratch: Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    let written = 0;
    let chunkNo = 0;
    while (written < size) {
      const n = Math.min(CHUNK, size - written);
      // A window of the pool that depends on file and chunk, stamped with both numbers.
      const off = (Math.imul(index + 1, 2654435761) + Math.imul(chunkNo, 40503) * 64) >>> 0;
      const start = (off % (POOL_SIZE - CHUNK)) & ~7;
      pool.copy(scratch, 0, start, start + n);
      if (n >= 16) {
        scratch.writeUInt32LE(index >>> 0, 0);
        scratch.writeUInt32LE(chunkNo >>> 0, 4);
        scratch.writeUInt32LE(size >>> 0, 8);
        scratch.writeUInt32LE(FORMAT_VERSION, 12);
      }
      let done = 0;
      while (done < n) done += fs.writeSync(fd, scratch, done, n - done);
      written += n;
      chunkNo++;
    }
  } finally {
    fs.closeSync(fd);
  }
}

// -------------------------------------------------------------------------------------------- build / reuse

function manifestPath(dir: string): string {
  return `${dir.replace(/\/+$/, '')}.manifest.json`;
}

function walk(dir: string, prefix = '', out: Map<string, number> = new Map()): Map<string, number> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) walk(path.join(dir, e.name), rel, out);
    else out.set(rel, e.isFile() ? fs.statSync(path.join(dir, e.name)).size : -1);
  }
  return out;
}

function treeMatches(dir: string, spec: TreeSpec, files: TreeFile[]): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(manifestPath(dir), 'utf8')) as { version?: number; groups?: unknown };
    if (m.version !== FORMAT_VERSION || JSON.stringify(m.groups) !== JSON.stringify(spec.groups)) return false;
    const found = walk(dir);
    if (found.size !== files.length) return false;
    for (const f of files) if (found.get(f.rel) !== f.size) return false;
    return true;
  } catch {
    return false;
  }
}

export function buildTree(nameOrSpec: string, dir?: string, log: (s: string) => void = console.log): Tree {
  const spec = parseSpec(nameOrSpec);
  const target = path.resolve(dir ?? path.join('.bench', `tree-${spec.name}`));
  const files = listFiles(spec);
  const bytes = files.reduce((a, f) => a + f.size, 0);
  let reused = true;
  if (!treeMatches(target, spec, files)) {
    reused = false;
    const t0 = performance.now();
    fs.rmSync(manifestPath(target), { force: true });
    fs.rmSync(target, { recursive: true, force: true });
    const pool = makePool();
    const scratch = Buffer.allocUnsafe(CHUNK);
    const made = new Set<string>();
    files.forEach((f, i) => {
      const d = path.dirname(path.join(target, f.rel));
      if (!made.has(d)) {
        fs.mkdirSync(d, { recursive: true });
        made.add(d);
      }
      writeFile(path.join(target, f.rel), f.size, i, pool, scratch);
    });
    fs.writeFileSync(
      manifestPath(target),
      JSON.stringify({ version: FORMAT_VERSION, name: spec.name, groups: spec.groups, files: files.length, bytes }, null, 1) + '\n',
    );
    log(`tree: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const desc = spec.groups.map((g) => `${g.count}×${sizeLabel(g.size).replace(/([KMG])$/, ' $1iB')}`).join(' + ');
  log(
    `tree "${spec.name}" ${reused ? '(reused) ' : ''}at ${target}: ${files.length.toLocaleString('en')} files, ` +
      `${(bytes / MiB).toFixed(1)} MiB (${bytes.toLocaleString('en')} bytes) = ${desc}`,
  );
  return { name: spec.name, dir: target, files: files.length, bytes, list: files, reused };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildTree(process.argv[2] ?? process.env.BENCH_TREE ?? 'mixed', process.argv[3]);
}

/**
 * A drive `factor` times larger than `base` that uses no more disk: `factor` copies of the base tree's folder
 * layout (c00/, c01/, …) whose files are hard links to the base tree's files. Every name is a separate file to a
 * reader (the station opens and reads each one), so the drive has factor × the files and bytes; the page cache holds
 * only the base tree. Rebuilt on every call (links are cheap), beside the base tree as `<base>-x<factor>`.
 */
export function multiplyTree(base: Tree, factor: number, log: (s: string) => void = console.log): Tree {
  if (!Number.isInteger(factor) || factor < 2) throw new Error(`multiplyTree: factor must be an integer ≥ 2`);
  const target = `${base.dir.replace(/\/+$/, '')}-x${factor}`;
  const t0 = performance.now();
  fs.rmSync(target, { recursive: true, force: true });
  const width = String(factor - 1).length;
  const list: TreeFile[] = [];
  for (let c = 0; c < factor; c++) {
    const copy = `c${String(c).padStart(width, '0')}`;
    const made = new Set<string>();
    for (const f of base.list) {
      const rel = `${copy}/${f.rel}`;
      const d = path.dirname(path.join(target, rel));
      if (!made.has(d)) {
        fs.mkdirSync(d, { recursive: true });
        made.add(d);
      }
      fs.linkSync(path.join(base.dir, f.rel), path.join(target, rel));
      list.push({ rel, size: f.size });
    }
  }
  const bytes = base.bytes * factor;
  log(
    `tree "${base.name}-x${factor}" at ${target}: ${list.length.toLocaleString('en')} files, ${(bytes / MiB).toFixed(1)} MiB ` +
      `= ${factor} copies of "${base.name}" as hard links (no extra disk; linked in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return { name: `${base.name}-x${factor}`, dir: target, files: list.length, bytes, list, reused: false };
}
