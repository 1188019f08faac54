import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batcher, groupCommit } from './batcher.js';

/** A batcher whose runs the test ends by hand: `runs` holds each run's inputs and its finisher. */
function manual() {
  const runs: Array<{ inputs: number[]; finish: (outs: Array<number | Error> | Error) => void }> = [];
  const b = new Batcher<number, number>((inputs) => new Promise((resolve, reject) => {
    runs.push({ inputs, finish: (outs) => (outs instanceof Error ? reject(outs) : resolve(outs)) });
  }));
  return { b, runs };
}

describe('Batcher', () => {
  it('serves callers that came during a run by the next run, all of them in one', async () => {
    const { b, runs } = manual();
    const first = b.request(1);
    const later = [b.request(2), b.request(3), b.request(4)];
    assert.deepEqual(runs.map((r) => r.inputs), [[1]], 'one run at a time: 2-4 wait for the next');
    runs[0]!.finish([10]);
    assert.equal(await first, 10);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs.map((r) => r.inputs), [[1], [2, 3, 4]]);
    runs[1]!.finish([20, 30, 40]);
    assert.deepEqual(await Promise.all(later), [20, 30, 40]);
    assert.deepEqual(b.stats, { runs: 2, callers: 4 });
  });

  it('fails only the caller whose result is an Error; a rejected run fails its whole batch, and the next run goes on', async () => {
    const { b, runs } = manual();
    const one = b.request(1);
    const [a, c] = [b.request(2), b.request(3)];
    runs[0]!.finish(new Error('database away'));
    await assert.rejects(one, /database away/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs.map((r) => r.inputs), [[1], [2, 3]]);
    runs[1]!.finish([2, new Error('id 3 is taken')]);
    assert.equal(await a, 2);
    await assert.rejects(c, /id 3 is taken/);
  });

  it('takes at most `max` inputs in a run; the rest go in the next', async () => {
    const runs: number[][] = [];
    const b = new Batcher<number, number>(async (xs) => { runs.push(xs); await new Promise((r) => setImmediate(r)); return xs; }, undefined, 2);
    assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map((x) => b.request(x))), [1, 2, 3, 4, 5]);
    assert.deepEqual(runs, [[1], [2, 3], [4, 5]]);
  });

  it('groupCommit: one run of the work for every caller waiting, told idle after the last', async () => {
    let works = 0;
    let idle = 0;
    const g = groupCommit(async () => { works++; await new Promise((r) => setImmediate(r)); }, () => idle++);
    await Promise.all(Array.from({ length: 10 }, () => g.request()));
    assert.equal(works, 2, 'the first caller, then the nine that came during its run');
    assert.equal(idle, 1);
  });
});
