import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SlowDown, isThrottleReply } from './slow-down.js';

describe('isThrottleReply', () => {
  const cases: Array<[string, boolean]> = [
    ['421 4.7.0 Too many connections', true],
    ['421 Too many concurrent SMTP connections from this IP', true],
    ['451 4.7.1 Rate limit exceeded, slow down', true],
    ['451 4.7.1 ratelimit: 30 per minute', true],
    ['432 4.7.12 Throttled', true],
    ['421 4.3.2 System not accepting network messages', true],
    ['451 4.4.5 Insufficient system resources', true],
    ['451 4.7.0 Temporary server error', true],
    ['421 Service not available, try again later', true],
    ['451 4.3.0 Temporary lookup failure', false],
    ['450 4.7.0 too many connections', false],          // only 421, 432 and 451
    ['550 5.7.1 Rate limit exceeded', false],            // permanent is never a slow-down
    ['451 4.3.0 accurate separate generate', false],     // "rate" inside words
    ['421 4.4.2 upstream.test closing connection', false],
  ];
  for (const [reply, want] of cases) it(`${want ? 'is' : 'is not'}: ${reply}`, () => assert.equal(isThrottleReply(reply), want));
});

describe('SlowDown', () => {
  it('halves the connections down to one and pauses, doubling the pause while throttling goes on', () => {
    let now = 1000;
    const s = new SlowDown(20, { pauseMs: 2000, maxPauseMs: 10_000, now: () => now });
    assert.equal(s.limit, 20);
    assert.equal(s.waitMs(), 0);
    s.throttled();
    assert.equal(s.limit, 10);
    assert.equal(s.waitMs(), 2000);
    now += 500;
    assert.equal(s.waitMs(), 1500);
    const limits: number[] = [];
    for (let i = 0; i < 5; i++) { s.throttled(); limits.push(s.limit); }
    assert.deepEqual(limits, [5, 2, 1, 1, 1]);
    assert.equal(s.waitMs(), 10_000, 'the pause doubles up to maxPauseMs');
  });

  it('recovers one connection per `limit` successes, and the pause fades', () => {
    let now = 0;
    const s = new SlowDown(4, { pauseMs: 1000, maxPauseMs: 8000, now: () => now });
    s.throttled(); s.throttled(); // limit 1, pause 2000
    assert.equal(s.limit, 1);
    now += 5000;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) { s.succeeded(); seen.push(s.limit); }
    assert.deepEqual(seen, [2, 2, 3, 3, 3, 4]);
    s.throttled();
    assert.equal(s.waitMs(), 1000, 'after recovering, the next pause starts small again');
  });

  it('does nothing on success while not throttled', () => {
    const s = new SlowDown(3, { pauseMs: 1000, maxPauseMs: 8000, now: () => 0 });
    for (let i = 0; i < 10; i++) s.succeeded();
    assert.equal(s.limit, 3);
  });
});
