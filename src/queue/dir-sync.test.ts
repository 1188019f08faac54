import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DirSync } from './dir-sync.js';

describe('DirSync', () => {
  let dir: string;
  let ds: DirSync;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-dirsync-test-'));
    ds = new DirSync(dir);
  });

  afterEach(() => {
    ds.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a single sync() resolves and counts one fsync for one caller', async () => {
    await ds.sync();
    assert.deepEqual(ds.stats, { syncs: 1, callers: 1 });
  });

  it('concurrent sync() calls share fsyncs', async () => {
    await Promise.all(Array.from({ length: 50 }, () => ds.sync()));
    assert.equal(ds.stats.callers, 50);
    assert.ok(ds.stats.syncs >= 1);
    assert.ok(ds.stats.syncs < ds.stats.callers, `expected shared fsyncs, got ${ds.stats.syncs} for 50 callers`);
    // the first call starts at once, the other 49 wait for and share the next
    assert.equal(ds.stats.syncs, 2);
  });

  it('a sync() called while one is running waits for a new fsync', async () => {
    const order: string[] = [];
    const seen = new Map<string, number>();
    const a = ds.sync().then(() => { order.push('a'); seen.set('a', ds.stats.syncs); });
    assert.equal(ds.stats.syncs, 1, 'the first call starts an fsync immediately');
    // these arrive while A's fsync is running: A's fsync may have started
    // before their link(), so it must not release them
    const b = ds.sync().then(() => { order.push('b'); seen.set('b', ds.stats.syncs); });
    const c = ds.sync().then(() => { order.push('c'); seen.set('c', ds.stats.syncs); });
    assert.equal(ds.stats.syncs, 1, 'no second fsync while one is running');
    await Promise.all([a, b, c]);
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.equal(seen.get('a'), 1, 'A released by the first fsync');
    assert.equal(seen.get('b'), 2, 'B released only by a second fsync that started after its call');
    assert.equal(seen.get('c'), 2, 'C shares the second fsync with B');
    assert.deepEqual(ds.stats, { syncs: 2, callers: 3 });
  });

  it('a sync() after everything settled starts a new fsync', async () => {
    await ds.sync();
    await ds.sync();
    assert.deepEqual(ds.stats, { syncs: 2, callers: 2 });
  });

  it('rejects all waiters when the directory cannot be opened, and keeps working afterwards', async () => {
    const missing = new DirSync(path.join(dir, 'does-not-exist'));
    try {
      const results = await Promise.allSettled([missing.sync(), missing.sync(), missing.sync()]);
      assert.ok(results.every((r) => r.status === 'rejected'), 'every waiter hears the failure');
      fs.mkdirSync(path.join(dir, 'does-not-exist'));
      await missing.sync(); // not wedged by the earlier failure
    } finally {
      missing.close();
    }
  });

  it('close() during an fsync lets it and the callers waiting behind it finish, then closes the directory', async () => {
    const openOnDir = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`) === dir; } catch { return false; } });
    const first = ds.sync();
    ds.close();
    const second = ds.sync(); // arrives during the first fsync: waits for the next one
    await Promise.all([first, second]);
    assert.deepEqual(ds.stats, { syncs: 2, callers: 2 });
    assert.deepEqual(openOnDir(), [], 'the directory is closed once both are done');
  });

  it('close() can be called more than once and sync() reopens', async () => {
    await ds.sync();
    ds.close();
    ds.close();
    await ds.sync();
    assert.equal(ds.stats.syncs, 2);
  });
});
