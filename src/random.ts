/**
 * mulberry32: a small seeded generator of numbers in [0, 1). The same seed gives the same sequence: the erase's
 * read-back spans follow from the job ID, and the tests' faults and crash trials can be replayed from a printed
 * seed. Not for anything secret.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
