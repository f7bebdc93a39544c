/**
 * MD5 rates on this machine, one core: Node's MD5 (one pass, and the two passes a part used to take) against the
 * lanes of src/load/md5-lanes.ts (a part's MD5 and the whole file's in one pass; the same for two files' parts at
 * once, as a hash thread pairs them; and one hash alone).
 *
 *   npm run bench:md5 [-- MiB]      (default 256 MiB of data, 3 rounds; medians in MiB/s of data)
 */
import { createHash, randomFillSync } from 'node:crypto';
import { Md5, updateAll, updatePair } from '../src/load/md5-lanes.ts';

const mib = Number(process.argv[2] ?? 256);
const data = randomFillSync(Buffer.alloc(mib * 1024 * 1024));
const part = 8 * 1024 * 1024;

const ways: Record<string, () => void> = {
  'node md5, one hash': () => void createHash('md5').update(data).digest(),
  'node md5, two hashes (a part\'s, then the file\'s)': () => {
    const file = createHash('md5');
    for (let at = 0; at < data.length; at += part) {
      const body = data.subarray(at, at + part);
      createHash('md5').update(body).digest();
      file.update(body);
    }
    file.digest();
  },
  'lanes, two hashes in one pass': () => {
    const file = new Md5();
    for (let at = 0; at < data.length; at += part) {
      const body = new Md5();
      updateAll([body, file], data.subarray(at, at + part));
      body.digest();
    }
    file.digest();
  },
  'lanes, two files at once (4 hashes; MiB/s of both)': () => {
    const [fileA, fileB] = [new Md5(), new Md5()];
    const half = data.length / 2;
    for (let at = 0; at < half; at += part) {
      const [partA, partB] = [new Md5(), new Md5()];
      updatePair({ hashes: [partA, fileA], data: data.subarray(at, at + part) }, { hashes: [partB, fileB], data: data.subarray(half + at, half + at + part) });
      partA.digest();
      partB.digest();
    }
    fileA.digest();
    fileB.digest();
  },
  'lanes, one hash': () => void new Md5().update(data).digest(),
};

console.log(`MD5 of ${mib} MiB of random bytes, 3 rounds (parts of 8 MiB), Node ${process.version}`);
for (const [name, run] of Object.entries(ways)) {
  const rates: number[] = [];
  for (let round = 0; round < 3; round++) {
    const t = performance.now();
    run();
    rates.push(mib / ((performance.now() - t) / 1000));
  }
  rates.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(50)} ${rates[1]!.toFixed(0).padStart(5)} MiB/s of data (${rates.map((r) => r.toFixed(0)).join(', ')})`);
}
