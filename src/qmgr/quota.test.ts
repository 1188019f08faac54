import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QuotaLedger } from './quota.js';
import { usedUp, utc } from './quota-gate.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-12-07T09:00:00Z');

describe('QuotaLedger', () => {
  it('grants up to the quota, then the rest waits until the first counted ones leave the rolling window', () => {
    const l = new QuotaLedger();
    const q = { count: 10, windowMs: DAY };
    assert.equal(l.take('relay', q, 6, T0).granted, 6);
    const second = l.take('relay', q, 6, T0 + 3_600_000);
    assert.equal(second.granted, 4);
    assert.equal(second.freesAt, T0 + DAY, 'one place frees when the 09:00 recipients are 24 hours old');
    assert.equal(l.take('relay', q, 1, T0 + DAY - 1).granted, 0, 'still inside the window');
    assert.equal(l.take('relay', q, 7, T0 + DAY).granted, 6, 'the first six left the window; the four of 10:00 still count');
  });

  it('a quota counts per route key', () => {
    const l = new QuotaLedger();
    const q = { count: 2, windowMs: DAY };
    assert.equal(l.take('route:a', q, 2, T0).granted, 2);
    assert.equal(l.take('route:b', q, 2, T0).granted, 2);
    assert.equal(l.take('route:a', q, 1, T0).granted, 0);
  });

  it('gives back recipients that were not sent, once', () => {
    const l = new QuotaLedger();
    const q = { count: 5, windowMs: DAY };
    const t = l.take('relay', q, 5, T0);
    t.giveBack(3);
    t.giveBack(3);
    assert.equal(l.used('relay', DAY, T0), 2);
  });

  it('freesAt waits for enough of the counted recipients to leave, not just the oldest', () => {
    const l = new QuotaLedger();
    const q = { count: 10, windowMs: 60_000 };
    l.take('relay', q, 1, T0);
    l.take('relay', q, 9, T0 + 20_000);
    const t = l.take('relay', q, 3, T0 + 30_000);
    assert.equal(t.granted, 0);
    assert.equal(t.freesAt, T0 + 60_000, 'the first place frees when the recipient of T0 leaves');
    const after = l.take('relay', q, 3, T0 + 60_000);
    assert.equal(after.granted, 1);
    assert.equal(after.freesAt, T0 + 80_000);
  });

  it('survives a round trip through its JSON (the quota file)', () => {
    const l = new QuotaLedger();
    const q = { count: 100, windowMs: DAY };
    l.take('route:m365', q, 60, T0);
    l.take('route:m365', q, 30, T0 + 7_200_000);
    const again = new QuotaLedger(JSON.parse(JSON.stringify(l)));
    assert.equal(again.used('route:m365', DAY, T0 + 7_200_000), 90);
    assert.equal(again.take('route:m365', q, 20, T0 + 7_200_000).granted, 10);
  });

  it('keeps a route\'s history small however many messages it counts (entries merge, their time only moves forward)', () => {
    const l = new QuotaLedger();
    const q = { count: 1_000_000, windowMs: DAY };
    for (let i = 0; i < 10_000; i++) l.take('relay', q, 1, T0 + i * 8_640); // 10,000 over one day
    assert.equal(l.used('relay', DAY, T0 + 86_390_000), 10_000, 'nothing counted is lost');
    assert.ok(l.toJSON().routes['relay']!.length <= 100, `${l.toJSON().routes['relay']!.length} entries`);
  });

  it('an unreadable quota file: every route is used up for one window from its last change', () => {
    const l = QuotaLedger.usedUpSince(T0);
    const q = { count: 10_000, windowMs: DAY };
    const t = l.take('route:m365', q, 1, T0 + 1000);
    assert.equal(t.granted, 0);
    assert.equal(t.freesAt, T0 + DAY);
    assert.equal(l.take('route:m365', q, 1, T0 + DAY).granted, 1);
  });
});

describe('the quota deferral reason', () => {
  it('names the quota, the route and when it resets, rounded up', () => {
    assert.equal(usedUp('m365', { count: 10000, windowMs: DAY }, Date.parse('2026-12-08T00:00:00Z')),
      'daily quota of 10000 recipients for route m365 used up; resets 2026-12-08 00:00 UTC');
    assert.equal(usedUp('relay', { count: 3, windowMs: 10_000 }, Date.parse('2026-12-08T10:00:01.200Z')),
      'quota of 3 recipients per 10s for [relay] used up; resets 2026-12-08 10:00:02 UTC');
    assert.equal(utc(Date.parse('2026-12-08T09:59:00.001Z'), DAY), '2026-12-08 10:00 UTC', 'never earlier than the real reset');
  });
});
