// A brief run of every fuzz target in `npm test` (seconds); `npm run fuzz` runs
// them at length. Fresh seeds each time: a failure prints its seed and the
// command that replays it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { makeTargets, runBatch } from './targets.js';

const RUNS: Record<string, number> = { data: 3000, config: 500, dialog: 40 };

describe('fuzz targets, brief run', () => {
  const targets = makeTargets({ exactAddresses: false });
  after(async () => { for (const t of targets) await t.close(); });
  for (const t of targets) {
    it(`${t.name}: ${RUNS[t.name]} random inputs hold every invariant`, async () => {
      const seed = (Date.now() ^ (Math.random() * 2 ** 31)) | 0;
      const r = await runBatch(t, RUNS[t.name]!, seed);
      assert.equal(r.failure, undefined, r.failure);
      assert.equal(r.runs, RUNS[t.name]);
    });
  }
});
