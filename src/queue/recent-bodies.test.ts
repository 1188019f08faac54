import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentBodies } from './recent-bodies.js';

describe('RecentBodies', () => {
  it('keeps bodies up to its budget, pushing out the oldest first, and forgets a delivered one', () => {
    const r = new RecentBodies(100);
    for (const id of ['a', 'b', 'c', 'd']) r.keep(id, Buffer.alloc(20, id));
    assert.deepEqual(r.size, { messages: 4, bytes: 80 });
    r.keep('e', Buffer.alloc(25, 'e')); // 105 > 100: a goes
    assert.equal(r.get('a'), undefined);
    assert.deepEqual(r.get('b'), Buffer.alloc(20, 'b'));
    assert.deepEqual(r.size, { messages: 4, bytes: 85 });
    r.forget('c');
    r.forget('c');
    assert.deepEqual(r.size, { messages: 3, bytes: 65 });
  });

  it('does not keep a body over a quarter of the budget (it would push out many small ones)', () => {
    const r = new RecentBodies(100);
    r.keep('small', Buffer.alloc(10));
    r.keep('big', Buffer.alloc(26));
    assert.equal(r.get('big'), undefined);
    assert.deepEqual(r.size, { messages: 1, bytes: 10 });
  });
});
