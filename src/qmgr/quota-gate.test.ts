import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import type { Destination } from '../route/choose-route.js';
import { QuotaGate } from './quota-gate.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const dataDir = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-quota-')); dirs.push(d); return d; };

const DAY = 86_400_000;
const dest = (quota?: { count: number; windowMs: number }): Destination => ({
  kind: 'upstream', key: 'route:m365', name: 'm365',
  upstream: { url: 'smtp://127.0.0.1:25', scheme: 'smtp', host: '127.0.0.1', port: 25, tls: 'none', mechanisms: [], allowPlaintextAuth: false, minTlsVersion: 'TLSv1.2', concurrency: 1, timeoutMs: 1000, reuseMessages: 100, reuseTimeMs: 300_000, ...(quota ? { quota } : {}) },
});
const message = (...to: string[]): OutgoingMessage => ({ id: 'ID1', sender: 'a@example.com', recipients: to.map((address) => ({ address })), size: 10, eightBit: false, body: () => { throw new Error('not read'); } });
const sentAll = (m: OutgoingMessage): RcptResult[] => allRecipients(m.recipients.map((r) => r.address), 'sent', { status: '2.0.0', reason: '250 ok' }, 'up[127.0.0.1]:25', 0);
const onDisk = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'quota.json'), 'utf8')) as { routes: Record<string, Array<[number, number]>> };
const counted = (dir: string) => (onDisk(dir).routes['route:m365'] ?? []).reduce((s, [, n]) => s + n, 0);

describe('QuotaGate', () => {
  it('makes the count durable before anything is sent, and defers what is over the quota until it frees', async () => {
    const dir = dataDir();
    const gate = await QuotaGate.open(dir, (m) => assert.fail(m), () => 1_000_000);
    const results = await gate.deliver(dest({ count: 2, windowMs: DAY }), message('a@x.net', 'b@x.net', 'c@x.net'), async (m) => {
      assert.equal(counted(dir), 2, 'the file counted them before the send began');
      assert.deepEqual(m.recipients.map((r) => r.address), ['a@x.net', 'b@x.net']);
      return sentAll(m);
    });
    assert.deepEqual(results.map((r) => [r.rcpt, r.outcome]), [['a@x.net', 'sent'], ['b@x.net', 'sent'], ['c@x.net', 'deferred']]);
    assert.equal(results[2]!.notBefore, 1_000_000 + DAY);
    assert.match(results[2]!.dsn.reason, /^daily quota of 2 recipients for route m365 used up; resets 1970-01-02 00:17 UTC$/);
    assert.equal(fs.statSync(path.join(dir, 'quota.json')).mode & 0o777, 0o600);
  });

  it('hands back what the upstream did not take', async () => {
    const dir = dataDir();
    const gate = await QuotaGate.open(dir, (m) => assert.fail(m), () => 1_000_000);
    const d = dest({ count: 3, windowMs: DAY });
    await gate.deliver(d, message('a@x.net', 'b@x.net'), async (m) => [sentAll(m)[0]!, { ...sentAll(m)[1]!, outcome: 'deferred' }]);
    const next = await gate.deliver(d, message('c@x.net', 'd@x.net'), async (m) => sentAll(m));
    assert.deepEqual(next.map((r) => r.outcome), ['sent', 'sent'], 'the deferred one did not use up a place');
    assert.equal(counted(dir), 3);
  });

  it('a restart reads the counts back', async () => {
    const dir = dataDir();
    const d = dest({ count: 2, windowMs: DAY });
    await (await QuotaGate.open(dir, () => {}, () => 5_000)).deliver(d, message('a@x.net', 'b@x.net'), async (m) => sentAll(m));
    const again = await QuotaGate.open(dir, (m) => assert.fail(m), () => 6_000);
    const r = await again.deliver(d, message('c@x.net'), async () => assert.fail('nothing may be sent'));
    assert.equal(r[0]!.outcome, 'deferred');
  });

  it('a quota file that cannot be read counts as used up for one window from its last change, with a warning', async () => {
    const dir = dataDir();
    fs.writeFileSync(path.join(dir, 'quota.json'), '{"version":1,"rou');
    const mtime = fs.statSync(path.join(dir, 'quota.json')).mtimeMs;
    const warnings: string[] = [];
    const gate = await QuotaGate.open(dir, (m) => warnings.push(m), () => mtime + 1000);
    assert.match(warnings[0]!, /quota file .*quota\.json cannot be read \(not JSON .*\): every route quota counts as used up for one window from/);
    const r = await gate.deliver(dest({ count: 10_000, windowMs: DAY }), message('a@x.net'), async () => assert.fail('nothing may be sent'));
    assert.equal(r[0]!.outcome, 'deferred');
    assert.equal(r[0]!.notBefore, mtime + DAY);
  });

  it('a route without a quota passes straight through', async () => {
    const gate = await QuotaGate.open(dataDir(), (m) => assert.fail(m));
    const r = await gate.deliver(dest(), message('a@x.net'), async (m) => sentAll(m));
    assert.equal(r[0]!.outcome, 'sent');
  });
});
