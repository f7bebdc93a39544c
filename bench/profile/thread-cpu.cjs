// Per-thread CPU of a station run: `--require` it into the station process, e.g.
//   BENCH_STATION_NODE_ARGS="--require $PWD/bench/profile/thread-cpu.cjs" npm run bench -- --tree mixed --tools station --verbose
// At exit it prints one line to stderr: each thread's id and CPU seconds (utime + stime from /proc), the busiest
// first. Threads are all named "node"; in a load they start in this order: the main thread (the process id), V8's
// helper threads (its optimising compiler; four), the S3 thread, the count thread, the hash threads.
// Sampled every 50 ms, so a thread that ended keeps its last sample.
const fs = require('node:fs');
const { isMainThread } = require('node:worker_threads');

if (isMainThread) {
  const ticks = 100; // USER_HZ
  const last = new Map();
  const sample = () => {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        last.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / ticks);
      } catch {
        // the thread ended between the listing and the read
      }
    }
  };
  setInterval(sample, 50).unref();
  process.on('exit', () => {
    sample();
    const rows = [...last].filter(([, cpu]) => cpu > 0).sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((sum, [, cpu]) => sum + cpu, 0);
    fs.writeSync(2, `THREAD-CPU total ${total.toFixed(2)} s: ${rows.map(([tid, cpu]) => `${tid === process.pid ? 'main' : tid} ${cpu.toFixed(2)}`).join(', ')}\n`);
  });
}
