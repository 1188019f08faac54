import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, type Clock, type Permit } from './rate-limit.js';

/** A clock that moves only when told to, firing due timers in order. */
function fakeClock(): Clock & { advance(ms: number): Promise<void> } {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  return {
    now: () => now,
    later(fn, ms) {
      const t = { at: now + ms, fn };
      timers.push(t);
      return () => { timers = timers.filter((x) => x !== t); };
    },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await flush(); // let callbacks that set timers run first
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        now = due.at;
        due.fn();
        await flush();
      }
      now = end;
      await flush();
    },
  };
}

const flush = () => new Promise((r) => setImmediate(r));

/** Starts n acquisitions and records when each was granted. */
function grab(limiter: RateLimiter, clock: Clock, n: number): { granted: Array<{ at: number; permit: Permit }> } {
  const granted: Array<{ at: number; permit: Permit }> = [];
  for (let i = 0; i < n; i++) void limiter.acquire().then((permit) => granted.push({ at: clock.now(), permit }));
  return { granted };
}

describe('RateLimiter', () => {
  it('lets `count` go at once and the next only a window after the first one finished', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ count: 5, windowMs: 2000 }, clock);
    const { granted } = grab(limiter, clock, 12);
    await flush();
    assert.equal(granted.length, 5);
    assert.equal(limiter.waiting, 7);
    await clock.advance(100);
    for (const g of granted) g.permit.release(true); // all five finished at t=100
    await flush();
    assert.equal(granted.length, 5, 'a finished message still counts for a window');
    await clock.advance(1999);
    assert.equal(granted.length, 5);
    await clock.advance(1);
    assert.equal(granted.length, 10);
    assert.ok(granted.slice(5).every((g) => g.at === 2100));
    for (const g of granted.slice(5)) g.permit.release(true);
    await clock.advance(2000);
    assert.equal(granted.length, 12);
    assert.equal(granted[11]!.at, 4100);
  });

  it('never has more than `count` messages finishing in any window, however long each one took', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ count: 3, windowMs: 1000 }, clock);
    const finishes: number[] = [];
    const { granted } = grab(limiter, clock, 9);
    let handled = 0;
    for (let step = 0; step < 100 && finishes.length < 9; step++) {
      await clock.advance(37);
      for (; handled < granted.length; handled++) {
        const g = granted[handled]!;
        const took = [10, 400, 5][handled % 3]!; // uneven transfers
        clock.later(() => { finishes.push(clock.now()); g.permit.release(true); }, took);
      }
    }
    assert.equal(finishes.length, 9);
    for (let i = 3; i < finishes.length; i++) assert.ok(finishes[i]! - finishes[i - 3]! >= 1000, `finishes ${finishes.join(', ')}`);
  });

  it('gives a place back at once when a permit was not used (connection failed before MAIL FROM)', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ count: 1, windowMs: 60_000 }, clock);
    const { granted } = grab(limiter, clock, 2);
    await flush();
    assert.equal(granted.length, 1);
    granted[0]!.permit.release(false);
    await flush();
    assert.equal(granted.length, 2);
    assert.equal(granted[1]!.at, 0);
    granted[0]!.permit.release(true); // a second release is ignored
    await flush();
    assert.equal(limiter.waiting, 0);
  });

  it('serves waiters in the order they came', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ count: 1, windowMs: 10 }, clock);
    const order: number[] = [];
    for (let i = 0; i < 4; i++) void limiter.acquire().then((p) => { order.push(i); p.release(true); });
    await clock.advance(100);
    assert.deepEqual(order, [0, 1, 2, 3]);
  });
});
