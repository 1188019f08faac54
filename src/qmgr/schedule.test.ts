import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expired, formatDelay, retryDelay } from './schedule.js';

test('backoff doubles from retry_min and stops at retry_max', () => {
  const mid = () => 0.5; // no jitter
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(n, 300_000, 3_600_000, mid)),
    [300_000, 600_000, 1_200_000, 2_400_000, 3_600_000, 3_600_000, 3_600_000]);
});

test('jitter stays within ±10% and never outside [min, max]', () => {
  assert.equal(retryDelay(2, 1000, 60_000, () => 0), 1800);
  assert.equal(retryDelay(2, 1000, 60_000, () => 0.999999), 2200);
  assert.equal(retryDelay(1, 1000, 60_000, () => 0), 1000);           // not below min
  assert.equal(retryDelay(20, 1000, 60_000, () => 0.999999), 60_000); // not above max
  assert.equal(retryDelay(1000, 1000, 60_000, () => 0.5), 60_000);    // huge attempt counts do not overflow
});

test('lifetime', () => {
  assert.equal(expired(0, 1000, 999), false);
  assert.equal(expired(0, 1000, 1000), true);
});

test('delays print like Postfix', () => {
  assert.equal(formatDelay(0), '0');
  assert.equal(formatDelay(4), '0');
  assert.equal(formatDelay(954), '0.95');
  assert.equal(formatDelay(12_345), '12.3');
  assert.equal(formatDelay(123_456), '123');
});
