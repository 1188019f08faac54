import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isQueueId, newQueueId } from './queue-id.js';

describe('newQueueId', () => {
  it('is 18 uppercase hex characters', () => {
    for (let i = 0; i < 100; i++) {
      const id = newQueueId();
      assert.match(id, /^[0-9A-F]{18}$/);
      assert.equal(id.length, 18);
    }
  });

  it('starts with the time in milliseconds', () => {
    const now = Date.UTC(2035, 0, 1);
    const id = newQueueId(now);
    assert.equal(parseInt(id.slice(0, 11), 16), now);
  });

  it('is strictly increasing for 5000 ids generated in a tight loop', () => {
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) ids.push(newQueueId());
    for (let i = 1; i < ids.length; i++) {
      assert.ok(ids[i - 1]! < ids[i]!, `id ${i} (${ids[i]}) not after id ${i - 1} (${ids[i - 1]})`);
    }
    assert.equal(new Set(ids).size, ids.length);
  });

  it('is strictly increasing for 5000 ids within one millisecond (a fast machine)', () => {
    const now = Date.UTC(2036, 5, 1);
    let prev = newQueueId(now);
    for (let i = 1; i < 5000; i++) {
      const id = newQueueId(now);
      assert.ok(prev < id, `id ${i} (${id}) not after ${prev}`);
      prev = id;
    }
  });

  it('orders ids of later milliseconds after earlier ones', () => {
    const a = newQueueId(Date.UTC(2037, 0, 1, 0, 0, 0, 0));
    const b = newQueueId(Date.UTC(2037, 0, 1, 0, 0, 0, 1));
    const c = newQueueId(Date.UTC(2037, 0, 1, 0, 0, 1, 0));
    assert.ok(a < b && b < c, `${a} ${b} ${c}`);
  });
});

describe('isQueueId', () => {
  it('accepts what newQueueId makes', () => {
    assert.equal(isQueueId(newQueueId()), true);
    assert.equal(isQueueId('0123456789ABCDEF01'), true);
  });

  it('rejects anything else', () => {
    for (const bad of [
      '', '0123456789ABCDEF0', '0123456789ABCDEF012', '0123456789abcdef01', '0123456789ABCDEG01',
      '0123456789ABCDEF01.json', '../0123456789ABCDE', ' 123456789ABCDEF01', '0123456789ABCDEF01\n',
    ]) {
      assert.equal(isQueueId(bad), false, JSON.stringify(bad));
    }
  });
});
