// npm run trials [-- N] [--seed S]: N crash trials (default 20) against radosgw; see test/support/trials.ts.
// Exits 1 when any count that must be 0 is not.
import { parseArgs } from 'node:util';
import { allZero, runTrials, summary } from '../test/support/trials.js';

const { values, positionals } = parseArgs({
  options: { seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  allowPositionals: true,
});
if (values.help) {
  console.log('usage: npm run trials -- [N] [--seed S]\n  N loads of a mixed drive, each killed with SIGKILL at a random moment and run again until done.');
  process.exit(0);
}
const trials = Number(positionals[0] ?? 20);
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isInteger(trials) || trials < 1 || positionals.length > 1) {
  console.error(`trials: expected one whole number of trials, got ${positionals.join(' ')}`);
  process.exit(2);
}
if (!Number.isInteger(seed)) {
  console.error(`trials: --seed must be a whole number, not ${values.seed}`);
  process.exit(2);
}

const totals = await runTrials({ trials, seed, say: (line) => console.log(line) });
for (const line of summary(totals)) console.log(line);
for (const p of totals.problems.slice(0, 30)) console.log(`  ${p}`);
console.log(allZero(totals) ? 'all zero' : `NOT all zero (replay with --seed ${seed})`);
process.exit(allZero(totals) ? 0 : 1);
