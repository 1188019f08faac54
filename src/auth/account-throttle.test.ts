import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountThrottle, loginPlace } from './account-throttle.js';

const T0 = 1_700_000_000_000;
const RATE = { count: 3, windowMs: 600_000 };

describe('AccountThrottle', () => {
  it('closes the account to every address it never logged in from once `count` failures fall in the window', () => {
    const t = new AccountThrottle(RATE);
    t.succeeded('alice', '192.0.2.1', T0);
    assert.equal(t.fail('alice', T0 + 1), 0);
    assert.equal(t.fail('alice', T0 + 2), 0);
    assert.equal(t.fail('alice', T0 + 3), 600_000 - 2, 'the third failure closes it until the first leaves the window');
    assert.equal(t.retryAfterMs('alice', '198.51.100.7', T0 + 4), 600_000 - 3);
    assert.equal(t.retryAfterMs('alice', '192.0.2.1', T0 + 4), 0, 'where alice logged in before');
    assert.equal(t.retryAfterMs('alice', '::ffff:192.0.2.1', T0 + 4), 0, 'in any spelling');
    assert.equal(t.retryAfterMs('bob', '198.51.100.7', T0 + 4), 0, 'other accounts are not touched');
    assert.equal(t.retryAfterMs('alice', '198.51.100.7', T0 + 1 + 600_000), 0, 'it ends with the window');
  });

  it('knows an address for 30 days; IPv6 clients by their /64', () => {
    const t = new AccountThrottle(RATE);
    t.succeeded('alice', '2001:db8:1:2:aaaa::1', T0);
    for (let i = 0; i < 3; i++) t.fail('alice', T0 + 31 * 86_400_000);
    const later = T0 + 31 * 86_400_000 + 1;
    assert.notEqual(t.retryAfterMs('alice', '2001:db8:1:2:bbbb::2', later), 0, 'known 31 days ago: no longer');
    t.succeeded('alice', '2001:db8:1:2:aaaa::1', later);
    assert.equal(t.retryAfterMs('alice', '2001:db8:1:2:bbbb::2', later), 0, 'the same /64');
    assert.notEqual(t.retryAfterMs('alice', '2001:db8:1:3::1', later), 0, 'another /64');
    assert.equal(loginPlace('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(loginPlace('::ffff:192.0.2.1'), '192.0.2.1');
  });

  it('unblock forgets the failures of the accounts named, or of all; known addresses stay', () => {
    const t = new AccountThrottle(RATE);
    for (const u of ['alice', 'bob']) for (let i = 0; i < 3; i++) t.fail(u, T0);
    assert.deepEqual(t.unblock(['alice', 'carol'], T0 + 1), ['alice']);
    assert.equal(t.retryAfterMs('alice', '198.51.100.7', T0 + 1), 0);
    assert.notEqual(t.retryAfterMs('bob', '198.51.100.7', T0 + 1), 0);
    assert.deepEqual(t.unblock('ALL', T0 + 1), ['bob']);
    assert.equal(t.retryAfterMs('bob', '198.51.100.7', T0 + 1), 0);
  });
});
