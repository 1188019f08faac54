import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReverseLookup, type LookupFn } from './reverse-lookup.js';

/** A lookup whose answers the test releases by hand, counting calls. */
function manualLookup() {
  const calls: string[] = [];
  const waiting = new Map<string, (name: string | undefined) => void>();
  const lookup: LookupFn = (ip) => { calls.push(ip); return new Promise((resolve) => waiting.set(ip, resolve)); };
  return { lookup, calls, answer: (ip: string, name: string | undefined) => { waiting.get(ip)!(name); waiting.delete(ip); } };
}

const ask = (r: ReverseLookup, ip: string) => new Promise<{ names: string[] | undefined; sync: boolean }>((resolve) => {
  let sync = true;
  r.reverse(ip, (_err, names) => resolve({ names, sync }));
  sync = false;
});

describe('ReverseLookup', () => {
  it('answers from the cache at once (no lookup) until the entry expires', async () => {
    const m = manualLookup();
    let now = 0;
    const r = new ReverseLookup({ lookup: m.lookup, now: () => now, hitTtlMs: 1000 });
    const first = ask(r, '192.0.2.1');
    m.answer('192.0.2.1', 'client.example');
    assert.deepEqual(await first, { names: ['client.example'], sync: false });
    assert.deepEqual(await ask(r, '192.0.2.1'), { names: ['client.example'], sync: true });
    assert.equal(m.calls.length, 1);
    now = 1001;
    const again = ask(r, '192.0.2.1');
    assert.equal(m.calls.length, 2, 'expired: looked up again');
    m.answer('192.0.2.1', 'renamed.example');
    assert.deepEqual((await again).names, ['renamed.example']);
  });

  it('gives up after waitMs (the session is "unknown"), and the late answer serves the next connection', async () => {
    const m = manualLookup();
    const r = new ReverseLookup({ lookup: m.lookup, waitMs: 5 });
    assert.deepEqual((await ask(r, '192.0.2.2')).names, []);
    m.answer('192.0.2.2', 'slow.example');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(await ask(r, '192.0.2.2'), { names: ['slow.example'], sync: true });
  });

  it('shares one lookup among sessions that ask at once, and remembers "no name" for missTtlMs', async () => {
    const m = manualLookup();
    let now = 0;
    const r = new ReverseLookup({ lookup: m.lookup, now: () => now, missTtlMs: 100 });
    const both = Promise.all([ask(r, '192.0.2.3'), ask(r, '192.0.2.3')]);
    m.answer('192.0.2.3', undefined);
    assert.deepEqual((await both).map((a) => a.names), [[], []]);
    assert.equal(m.calls.length, 1);
    assert.deepEqual(await ask(r, '192.0.2.3'), { names: [], sync: true });
    now = 101;
    void ask(r, '192.0.2.3');
    assert.equal(m.calls.length, 2);
  });

  it('treats a failed lookup as no name, and keeps at most maxEntries addresses (oldest out first)', async () => {
    const r = new ReverseLookup({ lookup: (ip) => (ip === '192.0.2.9' ? Promise.reject(new Error('SERVFAIL')) : Promise.resolve(`h${ip}`)), maxEntries: 2 });
    assert.deepEqual((await ask(r, '192.0.2.9')).names, []);
    await ask(r, '10.0.0.1');
    await ask(r, '10.0.0.2');
    assert.equal((await ask(r, '10.0.0.2')).sync, true);
    assert.equal((await ask(r, '192.0.2.9')).sync, false, 'the oldest entry was evicted');
  });
});
