import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPermission, isTransient, mapBounded, retryTransient } from './bounded.js';

const err = (code: string) => Object.assign(new Error(`${code}: something, open 'x'`), { code });

describe('mapBounded', () => {
  it('runs at most `limit` calls at once and keeps the order of the items', async () => {
    let running = 0;
    let peak = 0;
    const items = Array.from({ length: 200 }, (_, i) => i);
    const out = await mapBounded(items, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n % 3));
      running--;
      return n * 2;
    }, 8);
    assert.equal(peak, 8);
    assert.deepEqual(out, items.map((n) => n * 2));
  });

  it('handles no items, and fewer items than the limit', async () => {
    assert.deepEqual(await mapBounded([], async () => 1), []);
    assert.deepEqual(await mapBounded(['a'], async (s) => s + 'b', 32), ['ab']);
  });

  it('a rejection starts no more items and is passed on after the calls under way end', async () => {
    const started: number[] = [];
    let ended = 0;
    await assert.rejects(mapBounded(Array.from({ length: 50 }, (_, i) => i), async (n) => {
      started.push(n);
      await new Promise((r) => setTimeout(r, 5));
      ended++;
      if (n === 3) throw err('EIO');
    }, 4), /EIO/);
    assert.ok(started.length < 50, `started ${started.length}`);
    assert.equal(ended, started.length, 'nothing left running');
  });
});

describe('retryTransient', () => {
  it('retries EMFILE, ENFILE, EAGAIN and EBUSY until the call succeeds', async () => {
    for (const code of ['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']) {
      let calls = 0;
      const v = await retryTransient(async () => { if (++calls < 4) throw err(code); return 'ok'; }, { delayMs: 1 });
      assert.equal(v, 'ok');
      assert.equal(calls, 4, code);
    }
  });

  it('does not retry other errors (EACCES, ENOENT, no code)', async () => {
    for (const e of [err('EACCES'), err('ENOENT'), new Error('plain')]) {
      let calls = 0;
      await assert.rejects(retryTransient(async () => { calls++; throw e; }, { delayMs: 1 }), (x) => x === e);
      assert.equal(calls, 1);
    }
  });

  it('gives up after `tries` and throws the last error with its own code', async () => {
    let calls = 0;
    await assert.rejects(retryTransient(async () => { calls++; throw err('EMFILE'); }, { tries: 5, delayMs: 1 }), { code: 'EMFILE' });
    assert.equal(calls, 5);
  });
});

it('isTransient and isPermission tell the error codes apart', () => {
  assert.ok(isTransient(err('EMFILE')) && isTransient(err('ENFILE')) && isTransient(err('EAGAIN')) && isTransient(err('EBUSY')));
  assert.ok(!isTransient(err('EACCES')) && !isTransient(new Error('x')) && !isTransient(undefined));
  assert.ok(isPermission(err('EACCES')) && isPermission(err('EPERM')));
  assert.ok(!isPermission(err('EMFILE')) && !isPermission(err('EISDIR')));
});
