import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReply } from '../mail/reply.js';
import { ConnectionLimits } from './connection-limits.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '2001:db8::3';

describe('ConnectionLimits', () => {
  it('refuses above the per-ip limit with 421 4.7.0 naming the address', () => {
    const cl = new ConnectionLimits(100, 2);
    assert.equal(cl.open(A), undefined);
    assert.equal(cl.open(A), undefined);
    const r = cl.open(A);
    assert.ok(r);
    assert.equal(r.code, 421);
    assert.equal(r.enhanced, '4.7.0');
    assert.equal(formatReply(r), `421 4.7.0 Error: too many connections from ${A}`);
    assert.equal(cl.open(B), undefined, 'other addresses are not affected');
    assert.equal(cl.open_, 3, 'a refused connection takes no slot');
  });

  it('refuses above the total limit with 421 4.7.0', () => {
    const cl = new ConnectionLimits(3, 10);
    assert.equal(cl.open(A), undefined);
    assert.equal(cl.open(B), undefined);
    assert.equal(cl.open(C), undefined);
    const r = cl.open('198.51.100.9');
    assert.ok(r);
    assert.equal(formatReply(r), '421 4.7.0 Error: too many connections');
    assert.ok(cl.open(A), 'an address with free per-ip slots is refused too');
    assert.equal(cl.open_, 3);
  });

  it('close frees the total and the per-ip slot', () => {
    const cl = new ConnectionLimits(2, 1);
    assert.equal(cl.open(A), undefined);
    assert.equal(cl.open(B), undefined);
    assert.ok(cl.open(C), 'total full');
    assert.ok(cl.open(A), 'per-ip full');

    cl.close(B);
    assert.equal(cl.open_, 1);
    assert.ok(cl.open(A), 'A still holds its one per-ip slot');
    assert.equal(cl.open(C), undefined, 'the total slot B freed is available');
    assert.equal(cl.open_, 2);

    cl.close(A);
    assert.equal(cl.open(A), undefined, 'A\'s per-ip slot is free again');
    assert.equal(cl.open_, 2);
  });

  it('counts many connections per address correctly through open/close cycles', () => {
    const cl = new ConnectionLimits(1000, 5);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) assert.equal(cl.open(A), undefined, `round ${round}, open ${i}`);
      assert.ok(cl.open(A));
      for (let i = 0; i < 5; i++) cl.close(A);
      assert.equal(cl.open_, 0);
    }
  });

  it('a limit of zero refuses everything', () => {
    assert.ok(new ConnectionLimits(0, 10).open(A));
    assert.ok(new ConnectionLimits(10, 0).open(A));
  });

  it('connection_rate: attempts per address in a sliding window, refused ones counted, trusted clients exempt', () => {
    let now = 0;
    const cl = new ConnectionLimits(100, 100, { count: 3, windowMs: 60_000 }, () => now);
    for (let i = 0; i < 3; i++) { assert.equal(cl.open(A), undefined, `attempt ${i + 1}`); cl.close(A); now += 1000; }
    assert.equal(formatReply(cl.open(A)!), '421 4.7.0 Error: too many connections from 192.0.2.1');
    assert.equal(cl.open(B), undefined, 'another address has its own count');
    for (let i = 0; i < 10; i++) assert.equal(cl.open(C, true), undefined, 'trusted: not rated');
    now = 60_500; // the first attempt has left the window, but the refused one at 3 s still counts
    assert.ok(cl.open(A));
    now = 200_000;
    assert.equal(cl.open(A), undefined, 'a quiet minute later it may connect again');
  });
});
