// The short version of `npm run trials`: three loads, each killed with SIGKILL at a random moment and run again
// until done; every count that must be 0 is 0. The seed is printed; STATION_TEST_SEED=N replays it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTrials, summary } from './support/trials.js';

test('three crash trials: killed at random moments, resumed, nothing lost, corrupt, duplicated or left open', { timeout: 300_000 }, async (t) => {
  const seed = Number(process.env.STATION_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const totals = await runTrials({ trials: 3, seed, drive: { multipart: 2, medium: 20, small: 150 }, say: (line) => t.diagnostic(line) });
  for (const line of summary(totals)) t.diagnostic(line);
  assert.equal(totals.trials, 3);
  assert.ok(totals.kills >= 1, 'at least one run was killed');
  assert.ok(totals.files > 0 && totals.bytes > 0);
  assert.equal(totals.failedRuns, 0, totals.problems.join('\n'));
  assert.deepEqual(totals.counts, { lost: 0, corrupt: 0, strayObjects: 0, duplicatedRows: 0, missingRows: 0, wrongRows: 0, openUploads: 0 }, totals.problems.join('\n'));
});
