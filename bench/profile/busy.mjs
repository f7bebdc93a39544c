// Busy milliseconds of each thread per 200 ms of a run, side by side, from the .cpuprofile files of one process:
//   BENCH_STATION_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- --tree mixed --tools station --rounds 1
//   node bench/profile/busy.mjs /tmp/prof/*.cpuprofile
// Columns follow the files' order (the main thread first, then the worker threads as they started). A profile
// samples wall time: a thread that waits for a core still shows busy, so read the columns against each other.
import { readFileSync } from 'node:fs';

const bucketUs = Number(process.env.BUCKET_MS ?? 200) * 1000;
const files = process.argv.slice(2);
const profiles = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
const start = Math.min(...profiles.map((p) => p.startTime));
const columns = profiles.map((p) => {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const busy = [];
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (byId.get(id).callFrame.functionName === '(idle)') return;
    const b = Math.floor((t - start) / bucketUs);
    busy[b] = (busy[b] ?? 0) + dt;
  });
  return busy;
});
console.log(`    ms  ${files.map((_, i) => `t${i}`.padStart(5)).join('')}`);
const buckets = Math.max(...columns.map((c) => c.length));
for (let b = 0; b < buckets; b++) {
  console.log(`${String((b * bucketUs) / 1000).padStart(6)}  ${columns.map((c) => String(Math.round((c[b] ?? 0) / 1000)).padStart(5)).join('')}`);
}
