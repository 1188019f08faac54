// Which policy applies when (RFC 8461 §5.1), against a scripted TXT record, a
// scripted policy fetch and a clock: fetch on a new id, keep the cached policy
// when the record or the policy host is gone, retry a failed fetch only after
// a pause, refresh past half of max_age, forget an expired policy, and read
// the cache back from disk as a restarted daemon would.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FetchResult, StsResolver } from './fetch.js';
import { MtaSts, RETRY_AFTER_MS, type StsEvent } from './mta-sts.js';
import { loadPolicySync } from './cache.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

interface World { txt: string[][] | string; fetch: FetchResult; fetches: number; clock: number; events: StsEvent[]; dataDir: string }

function world(dataDir?: string): { w: World; sts: () => MtaSts } {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-sts-'));
  if (!dataDir) dirs.push(dir);
  const w: World = { txt: [['v=STSv1; id=one']], fetch: { outcome: 'ok', policy: { mode: 'enforce', mx: ['mx.example.net'], maxAge: 3600 } }, fetches: 0, clock: 1_000_000, events: [], dataDir: dir };
  const resolver: StsResolver = {
    resolveTxt: async () => { if (typeof w.txt === 'string') throw Object.assign(new Error(w.txt), { code: w.txt }); return w.txt; },
    resolve4: async () => [], resolve6: async () => [],
  };
  const sts = () => new MtaSts({ resolver, dataDir: dir, onEvent: (e) => w.events.push(e), now: () => w.clock, fetch: async () => { w.fetches++; return w.fetch; } });
  return { w, sts };
}

describe('MTA-STS policy cache (RFC 8461 §5.1)', () => {
  it('fetches on first use, then uses the cache while the id stays', async () => {
    const { w, sts } = world();
    const s = sts();
    assert.equal((await s.policyFor('example.net'))?.mode, 'enforce');
    assert.equal((await s.policyFor('example.net'))?.id, 'one');
    assert.equal(w.fetches, 1);
    assert.match((w.events[0] as { text: string }).text, /^MTA-STS policy of example\.net \(mode enforce, id one, mx mx\.example\.net\) fetched, max_age 3600s, cached until /);
  });

  it('a new id fetches again; a failed fetch keeps the cached policy and is not retried at once', async () => {
    const { w, sts } = world();
    const s = sts();
    await s.policyFor('example.net');
    w.txt = [['v=STSv1; id=two']];
    w.fetch = { outcome: 'unreachable', detail: 'https://mta-sts.example.net/.well-known/mta-sts.txt: connect ECONNREFUSED' };
    assert.equal((await s.policyFor('example.net'))?.id, 'one');
    assert.match((w.events.at(-1) as { text: string }).text, /not used: .*ECONNREFUSED; the cached policy \(id one, mode enforce\) stays in force until /);
    await s.policyFor('example.net');
    assert.equal(w.fetches, 2, 'no second fetch within the pause');
    w.clock += RETRY_AFTER_MS;
    w.fetch = { outcome: 'ok', policy: { mode: 'testing', mx: ['*.example.net'], maxAge: 3600 } };
    const p = await s.policyFor('example.net');
    assert.deepEqual([p?.id, p?.mode], ['two', 'testing']);
    assert.match((w.events.at(-1) as { text: string }).text, /id two.* fetched.*, replaces id one$/);
  });

  it('keeps the cached policy when the TXT record is gone or DNS fails, and drops it once expired', async () => {
    const { w, sts } = world();
    const s = sts();
    await s.policyFor('example.net');
    w.txt = 'ENOTFOUND';
    assert.equal((await s.policyFor('example.net'))?.id, 'one');
    w.txt = 'ETIMEOUT';
    assert.equal((await s.policyFor('example.net'))?.id, 'one');
    w.clock += 3600_000;
    assert.equal(await s.policyFor('example.net'), undefined);
    assert.equal(loadPolicySync(path.join(w.dataDir, 'mta-sts'), 'example.net'), undefined, 'the expired file is removed');
  });

  it('refreshes a policy past half its max_age under the same id', async () => {
    const { w, sts } = world();
    const s = sts();
    await s.policyFor('example.net');
    w.clock += 1800_000 - 1;
    await s.policyFor('example.net');
    assert.equal(w.fetches, 1);
    w.clock += 1;
    const p = await s.policyFor('example.net');
    assert.equal(w.fetches, 2);
    assert.equal(p?.expiresAt, w.clock + 3600_000);
  });

  it('a restarted daemon reads the policy from data_dir and applies it while the policy host is down', async () => {
    const first = world();
    await first.sts().policyFor('example.net');
    const again = world(first.w.dataDir);
    again.w.clock = first.w.clock + 60_000;
    again.w.txt = [['v=STSv1; id=two']];
    again.w.fetch = { outcome: 'unreachable', detail: 'down' };
    const p = await again.sts().policyFor('example.net');
    assert.deepEqual([p?.id, p?.mode, p?.mx], ['one', 'enforce', ['mx.example.net']]);
  });

  it('without a cached policy, a failed fetch means no policy; concurrent callers share one fetch', async () => {
    const { w, sts } = world();
    w.fetch = { outcome: 'invalid', detail: 'version is "STSv2", not "STSv1"' };
    const s = sts();
    const [a, b] = await Promise.all([s.policyFor('example.net'), s.policyFor('example.net')]);
    assert.equal(a, undefined);
    assert.equal(b, undefined);
    assert.equal(w.fetches, 1);
    assert.match((w.events[0] as { text: string }).text, /not used: version is "STSv2".*; mail to it is delivered as if it had no policy$/);
  });
});
