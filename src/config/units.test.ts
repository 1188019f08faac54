// Sizes, durations and rates as smarthost.toml writes them: the values the
// SPEC promises ("25MB" decimal, "25MiB" binary, "30s"/"5m"/"4h"/"5d",
// "5/10m"), and a sentence instead of a number for everything else.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration, parseRate, parseSize } from './units.js';

/** Asserts that a parser answered with an error sentence, not a value. */
function assertError(result: unknown, input: unknown): asserts result is string {
  assert.equal(typeof result, 'string', `expected an error for ${JSON.stringify(input)}, got ${JSON.stringify(result)}`);
  assert.ok((result as string).length > 10, `the error for ${JSON.stringify(input)} should say what is wrong`);
}

describe('parseSize', () => {
  it('reads decimal and binary units as the SPEC defines them', () => {
    assert.equal(parseSize('25MB'), 25_000_000);
    assert.equal(parseSize('25MiB'), 26_214_400);
    assert.equal(parseSize('1KB'), 1000);
    assert.equal(parseSize('1KiB'), 1024);
    assert.equal(parseSize('2GB'), 2_000_000_000);
    assert.equal(parseSize('1GiB'), 1_073_741_824);
    assert.equal(parseSize('512B'), 512);
  });

  it('accepts plain byte counts, spaces and fractions', () => {
    assert.equal(parseSize(10_240), 10_240);
    assert.equal(parseSize('10240'), 10_240);
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize(' 25 MB '), 25_000_000);
    assert.equal(parseSize('1.5MB'), 1_500_000);
    assert.equal(parseSize('0.5MiB'), 524_288);
  });

  it('rejects what is not a size', () => {
    for (const bad of ['25 megabytes', 'MB', '', '-5MB', '25XB', '25MB5', '1.2.3MB', '25 M B', 'ten MB']) {
      const r = parseSize(bad);
      assertError(r, bad);
      assert.match(r, /25MB/, 'the error shows the expected form');
      assert.ok(r.includes(JSON.stringify(bad)), `the error quotes the value: ${r}`);
    }
    for (const bad of [25.5, -1, true, null, undefined, ['25MB'], { size: 1 }]) assertError(parseSize(bad), bad);
  });
});

describe('parseDuration', () => {
  it('reads the SPEC units into milliseconds', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('4h'), 14_400_000);
    assert.equal(parseDuration('5d'), 432_000_000);
    assert.equal(parseDuration('1w'), 604_800_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5h'), 5_400_000);
  });

  it('reads "0" and 0 as zero (off, like Postfix delay_warning_time)', () => {
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration(0), 0);
    assert.equal(parseDuration('0s'), 0);
  });

  it('rejects durations without a unit, with an unknown unit, or negative', () => {
    for (const bad of ['5', '300', '5 days', '5x', '', 'm', '-5m', '5M', 'five minutes', '5m ago']) {
      const r = parseDuration(bad);
      assertError(r, bad);
      assert.match(r, /"30s"/, 'the error shows an example');
    }
    // a bare non-zero number is ambiguous (seconds? milliseconds?), so it is an error too
    for (const bad of [300, 1.5, true, null, undefined, ['5m']]) assertError(parseDuration(bad), bad);
  });

  it('formatDuration prints what parseDuration reads back', () => {
    assert.equal(formatDuration(300_000), '5m');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(432_000_000), '5d');
    assert.equal(formatDuration(1500), '1500ms');
    for (const ms of [1, 1500, 30_000, 90_000, 300_000, 3_600_000, 5_400_000, 86_400_000, 432_000_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, `round trip of ${ms}`);
    }
  });
});

describe('parseRate', () => {
  it('reads "5/10m" as 5 events per 10 minutes', () => {
    assert.deepEqual(parseRate('5/10m'), { count: 5, windowMs: 600_000 });
    assert.deepEqual(parseRate('1/1h'), { count: 1, windowMs: 3_600_000 });
    assert.deepEqual(parseRate('100/30s'), { count: 100, windowMs: 30_000 });
    assert.deepEqual(parseRate(' 5 / 10m '), { count: 5, windowMs: 600_000 });
  });

  it('rejects rates without a count, without a window, or with a zero', () => {
    for (const bad of ['5', '5/', '/10m', '5/10', '5/x', 'five/10m', '5.5/10m', '-5/10m', '5/0', '5/0s', '5 per 10m', '']) {
      const r = parseRate(bad);
      assertError(r, bad);
      assert.ok(r.includes(JSON.stringify(bad)), `the error quotes the value: ${r}`);
    }
    const zero = parseRate('0/10m');
    assertError(zero, '0/10m');
    assert.match(zero, /at least 1/);
    for (const bad of [5, null, undefined, { count: 5 }]) assertError(parseRate(bad), bad);
  });
});
