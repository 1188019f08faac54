import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthThrottle } from './throttle.js';

const IP = '192.0.2.1';
const OTHER = '2001:db8::1';
const T0 = 1_700_000_000_000;

describe('AuthThrottle', () => {
  it('is not blocked before any failure', () => {
    const t = new AuthThrottle({ count: 3, windowMs: 60_000 });
    assert.equal(t.blocked(IP, T0), false);
  });

  it('blocks after `count` failures within the window, not before', () => {
    const t = new AuthThrottle({ count: 3, windowMs: 60_000 });
    t.fail(IP, T0);
    t.fail(IP, T0 + 1_000);
    assert.equal(t.blocked(IP, T0 + 2_000), false, 'two failures are below the limit');
    t.fail(IP, T0 + 2_000);
    assert.equal(t.blocked(IP, T0 + 2_000), true);
    assert.equal(t.blocked(IP, T0 + 59_999), true, 'still inside the window of the oldest failure');
  });

  it('unblocks once the oldest counted failure leaves the window', () => {
    const t = new AuthThrottle({ count: 3, windowMs: 60_000 });
    t.fail(IP, T0);
    t.fail(IP, T0 + 10_000);
    t.fail(IP, T0 + 20_000);
    assert.equal(t.blocked(IP, T0 + 59_999), true);
    assert.equal(t.blocked(IP, T0 + 60_000), false, 'the failure at T0 has left the window');
    // one more failure brings it back to three within the window
    t.fail(IP, T0 + 60_000);
    assert.equal(t.blocked(IP, T0 + 60_001), true);
    assert.equal(t.blocked(IP, T0 + 70_000), false);
  });

  it('does not count failures spread wider than the window', () => {
    const t = new AuthThrottle({ count: 3, windowMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      t.fail(IP, T0 + i * 31_000);
      assert.equal(t.blocked(IP, T0 + i * 31_000), false, `failure ${i}`);
    }
  });

  it('tracks addresses independently', () => {
    const t = new AuthThrottle({ count: 2, windowMs: 60_000 });
    t.fail(IP, T0);
    t.fail(IP, T0 + 1);
    t.fail(OTHER, T0 + 2);
    assert.equal(t.blocked(IP, T0 + 3), true);
    assert.equal(t.blocked(OTHER, T0 + 3), false);
    assert.equal(t.blocked('198.51.100.1', T0 + 3), false);
    t.fail(OTHER, T0 + 4);
    assert.equal(t.blocked(OTHER, T0 + 5), true);
    assert.equal(t.blocked(IP, T0 + 60_001), false, 'IP unblocked');
    assert.equal(t.blocked(OTHER, T0 + 60_001), true, 'OTHER still blocked');
  });

  it('a count of 1 blocks after the first failure', () => {
    const t = new AuthThrottle({ count: 1, windowMs: 1_000 });
    t.fail(IP, T0);
    assert.equal(t.blocked(IP, T0 + 999), true);
    assert.equal(t.blocked(IP, T0 + 1_000), false);
  });

  it('uses the clock when no time is given', () => {
    const t = new AuthThrottle({ count: 2, windowMs: 60_000 });
    t.fail(IP);
    t.fail(IP);
    assert.equal(t.blocked(IP), true);
    assert.equal(t.blocked(IP, Date.now() + 61_000), false);
  });
});

describe('AuthThrottle: how long, and unblock (issue 20)', () => {
  it('says how long an address stays blocked, from the oldest counted failure', () => {
    const t = new AuthThrottle({ count: 3, windowMs: 600_000 });
    assert.equal(t.fail(IP, T0), 0);
    assert.equal(t.fail(IP, T0 + 60_000), 0);
    assert.equal(t.retryAfterMs(IP, T0 + 60_000), 0, 'not blocked yet');
    assert.equal(t.fail(IP, T0 + 120_000), 480_000, 'the third failure blocks until T0 + 10 minutes');
    assert.equal(t.retryAfterMs(IP, T0 + 300_000), 300_000);
    assert.equal(t.retryAfterMs(IP, T0 + 600_000), 0);
  });

  it('unblock lifts one address at once, whatever form it is written in; others stay blocked', () => {
    const t = new AuthThrottle({ count: 1, windowMs: 600_000 });
    t.fail('::ffff:127.0.0.1', T0);
    t.fail(OTHER, T0);
    assert.equal(t.blocked('127.0.0.1', T0 + 1), true, 'an IPv4-mapped address is the same client');
    assert.deepEqual(t.unblock(['127.0.0.1'], T0 + 2), ['127.0.0.1']);
    assert.equal(t.blocked('::ffff:127.0.0.1', T0 + 3), false);
    assert.equal(t.blocked(OTHER, T0 + 3), true);
    assert.deepEqual(t.unblock(['198.51.100.7'], T0 + 4), [], 'an address that was not blocked');
  });

  it('unblock ALL forgets every address', () => {
    const t = new AuthThrottle({ count: 1, windowMs: 600_000 });
    t.fail(IP, T0);
    t.fail('2001:DB8::1', T0);
    assert.deepEqual(t.unblock('ALL', T0 + 1).sort(), ['192.0.2.1', '2001:db8::1']);
    assert.equal(t.blocked(IP, T0 + 2), false);
    assert.equal(t.blocked(OTHER, T0 + 2), false);
  });
});
