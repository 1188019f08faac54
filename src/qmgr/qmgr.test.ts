// The queue manager against a recording transport (no sockets) and a real
// spool in a temp dir: state per recipient, backoff, restart, lifetime,
// notices, and the control verbs.
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Envelope } from '../mail/envelope.js';
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import { MailLog } from '../maillog/maillog.js';
import { FsSpool } from '../queue/fs-spool.js';
import type { Destination } from '../route/choose-route.js';
import { waitFor } from '../../test/helpers/wait.js';
import { QueueManager, type Transports } from './qmgr.js';

type Script = (rcpt: string, attempt: number) => RcptResult['outcome'];

/** Taken before any test fakes the global one (mock.timers). */
const realSetTimeout = globalThis.setTimeout;
/** The queue gauge without the oldest arrival. */
const pick = ({ active, deferred, held }: ReturnType<QueueManager['snapshot']>) => ({ active, deferred, held });
/** The one message waits for its time: neither in delivery nor in line for it (what snapshot() counts as active). */
const waits = (m: QueueManager) => { const s = m.snapshot(); return s.active === 0 && s.deferred === 1; };

class RecordingTransport implements Transports {
  calls: Array<{ dest: Destination; msg: OutgoingMessage }> = [];
  forgot = 0;
  private attempts = new Map<string, number>();
  constructor(public script: Script) {}
  async deliver(dest: Destination, msg: OutgoingMessage): Promise<RcptResult[]> {
    this.calls.push({ dest, msg });
    return msg.recipients.map(({ address }) => {
      const n = (this.attempts.get(address) ?? 0) + 1;
      this.attempts.set(address, n);
      const outcome = this.script(address, n);
      const status = outcome === 'sent' ? '2.0.0' : outcome === 'bounced' ? '5.1.1' : '4.4.1';
      return { rcpt: address, outcome, dsn: { status, reason: `${status} scripted` }, relay: 'up[127.0.0.1]:25', connectMs: 1, transmitMs: 1 } as RcptResult;
    });
  }
  forgetDead(): void { this.forgot++; }
}

describe('QueueManager', () => {
  let dir: string;
  let spool: FsSpool;
  let lines: string[];
  let log: MailLog;
  const managers: QueueManager[] = [];
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmgr-test-'));
    spool = new FsSpool(dir);
    await spool.recover();
    lines = [];
    log = new MailLog({ format: 'postfix', hostname: 'relay.test', sink: { write: (l) => { lines.push(l); } } });
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close(100);
    spool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function qmgr(t: Transports, queue: Partial<{ lifetimeMs: number; retryMinMs: number; retryMaxMs: number; delayWarningMs: number; deferDelivery: boolean }> = {}, inflowLimit?: number): QueueManager {
    const m = new QueueManager({
      spool, log, transports: t, hostname: 'relay.test', rand: () => 0.5, ...(inflowLimit ? { inflowLimit } : {}),
      routes: { localDomains: ['relay.test'], routes: [] },
      queue: { store: { kind: 'files' }, nodeName: 'test', leaseMs: 120_000, lifetimeMs: 86_400_000, retryMinMs: 60_000, retryMaxMs: 600_000, delayWarningMs: 0, deferDelivery: false, ...queue },
    });
    managers.push(m);
    return m;
  }

  async function put(sender: string, rcpts: string[], arrived = new Date()): Promise<Envelope> {
    const inc = await spool.receive({ sender, recipients: rcpts.map((address) => ({ address })), client: { address: '127.0.0.1', hostname: 'localhost', helo: 'x', protocol: 'ESMTP' }, arrived: arrived.toISOString() });
    await inc.write(Buffer.from('Subject: t\r\n\r\nbody\r\n'));
    return inc.commit();
  }

  const until = (cond: () => boolean | Promise<boolean>, what: string) => waitFor(cond, () => `${what}\n${lines.join('')}`);
  /** until() for while the test fakes the clock: polls on the real one (10 ms apart, 10 s at most, as waitFor does). */
  async function realUntil(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => realSetTimeout(r, 10));
    assert.ok(cond(), `timed out waiting for ${what}\n${lines.join('')}`);
  }

  it('groups recipients by destination, records each outcome, saves the deferred ones with a backoff time', async () => {
    const t = new RecordingTransport((rcpt) => rcpt.startsWith('later') ? 'deferred' : 'sent');
    const m = qmgr(t);
    const env = await put('a@client.test', ['one@example.net', 'later@example.net', 'two@example.org']);
    m.enqueue(env);
    await until(async () => (await spool.get(env.id))?.state.recipients.some((r) => r.state === 'deferred') ?? false, 'deferred state');
    assert.deepEqual(t.calls.map((c) => [c.dest.key, c.msg.recipients.map((r) => r.address)]).sort(),
      [['mx:example.net', ['one@example.net', 'later@example.net']], ['mx:example.org', ['two@example.org']]]);
    const state = (await spool.get(env.id))!.state;
    const later = state.recipients.find((r) => r.address === 'later@example.net')!;
    assert.equal(later.attempts, 1);
    const wait = Date.parse(later.nextAttempt!) - Date.now();
    assert.ok(wait > 50_000 && wait <= 60_000, `next attempt in ${wait} ms (retry_min 60s)`);
    assert.equal(state.recipients.find((r) => r.address === 'one@example.net')!.state, 'sent');
  });

  it('a transport that throws defers only its own recipients; the others\' results are kept and nothing is retried at once', async () => {
    const t = new RecordingTransport(() => 'sent');
    const throwing: Transports = {
      deliver: (dest, msg) => dest.key === 'mx:broken.example' ? Promise.reject(new Error('EMFILE: too many open files')) : t.deliver(dest, msg),
      forgetDead: () => undefined,
    };
    const m = qmgr(throwing);
    const env = await put('a@client.test', ['ok@example.net', 'x@broken.example']);
    m.enqueue(env);
    await until(async () => (await spool.get(env.id))?.state.recipients.some((r) => r.state === 'deferred') ?? false, 'deferred state');
    // the attempt has ended and the message waits for its retry: not in delivery, nor in line for it
    await until(() => waits(m), 'the attempt to end');
    assert.equal(t.calls.length, 1, 'the delivered recipient is not sent again');
    const state = (await spool.get(env.id))!.state;
    assert.deepEqual(state.recipients.map((r) => [r.address, r.state]), [['ok@example.net', 'sent'], ['x@broken.example', 'deferred']]);
    assert.match(state.recipients[1]!.lastReply!, /delivery failed: EMFILE: too many open files/);
    assert.match(lines.join(''), /warning: \w+: delivery via mx:broken\.example failed: EMFILE/);
  });

  it('after a restart, waits for the saved next attempt; flush tries at once and forgets dead destinations', async () => {
    const t = new RecordingTransport((_r, n) => n === 1 ? 'deferred' : 'sent');
    const first = qmgr(t);
    const env = await put('a@client.test', ['b@example.net']);
    first.enqueue(env);
    await until(async () => (await spool.get(env.id))?.state.recipients[0]!.state === 'deferred', 'deferral');
    await first.close();
    const second = qmgr(t);
    await second.start();
    assert.ok(waits(second), 'recovered to wait for its saved next attempt, not put in line');
    assert.equal(t.calls.length, 1, 'not retried before its time');
    assert.deepEqual(second.flush('ALL').done, [env.id]);
    assert.equal(t.forgot, 1);
    await until(async () => (await spool.get(env.id)) === undefined, 'removal');
    assert.match(lines.join(''), new RegExp(`${env.id}: removed`));
  });

  it('bounces what is still deferred after the lifetime and spools one notice to the sender', async () => {
    const t = new RecordingTransport(() => 'deferred');
    const m = qmgr(t, { lifetimeMs: 1000 });
    const env = await put('a@client.test', ['b@example.net'], new Date(Date.now() - 5000));
    m.enqueue(env);
    await until(() => lines.some((l) => l.includes('status=expired, returned to sender')), 'expiry');
    await until(() => t.calls.some((c) => c.msg.sender === ''), 'the notice');
    const notice = t.calls.find((c) => c.msg.sender === '')!.msg;
    assert.deepEqual(notice.recipients.map((r) => [r.address, r.notify]), [['a@client.test', ['NEVER']]]);
    const chunks: Buffer[] = [];
    for await (const c of notice.body()) chunks.push(c as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /Action: failed/);
  });

  it('holds, releases and deletes; a held message is not tried', async () => {
    const t = new RecordingTransport(() => 'deferred');
    const m = qmgr(t);
    const env = await put('a@client.test', ['b@example.net']);
    m.enqueue(env);
    await until(() => t.calls.length === 1, 'first attempt');
    await until(async () => (await spool.get(env.id))?.state.recipients[0]!.attempts === 1, 'state');
    assert.deepEqual((await m.hold([env.id], true)).done, [env.id]);
    assert.equal((await spool.get(env.id))!.state.held, true);
    m.flush([env.id]);
    assert.deepEqual(pick(m.snapshot()), { active: 0, deferred: 0, held: 1 }, 'a held message is not put in line by flush');
    assert.equal(t.calls.length, 1);
    await m.hold([env.id], false);
    await until(() => t.calls.length === 2, 'retry on release');
    await until(async () => (await spool.get(env.id))?.state.recipients[0]!.attempts === 2, 'state after release');
    assert.deepEqual(await m.delete([env.id, 'FFFFFFFFFFFFFFFFFF']), { done: [env.id], missing: ['FFFFFFFFFFFFFFFFFF'] });
    assert.equal(await spool.get(env.id), undefined);
  });

  it('defer_delivery: keeps new, restarted and deferred mail waiting; flush delivers what it names; inflow() is not slowed', async () => {
    const t = new RecordingTransport((rcpt, n) => rcpt.startsWith('later') && n === 1 ? 'deferred' : 'sent');
    const waiting = await put('a@client.test', ['old@example.net']);
    const m = qmgr(t, { deferDelivery: true, retryMinMs: 10, retryMaxMs: 10 }, 1);
    await m.start(); // found in the spool at start
    assert.match(lines.join(''), /warning: delivery is deferred \(\[queue\] defer_delivery = true\)/);
    const one = await put('a@client.test', ['later@example.net']);
    const two = await put('a@client.test', ['two@example.org']);
    m.enqueue(one);
    m.enqueue(two);
    assert.deepEqual(pick(m.snapshot()), { active: 0, deferred: 3, held: 0 }, 'nothing is put in line by itself');
    assert.equal(t.calls.length, 0, 'nothing is tried by itself');
    let letIn = false;
    void m.inflow().then(() => { letIn = true; });
    await new Promise((r) => setImmediate(r));
    assert.ok(letIn, 'inflow() does not wait');
    // A fake clock while the flushed attempt runs: a retry timer it arms (retry_min is 10 ms) is one
    // this test fires at will, so "not tried again" is seen at once, not hoped for after a sleep.
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
    try {
      assert.deepEqual(m.flush([one.id]), { done: [one.id], missing: [] });
      assert.equal(m.snapshot().active, 1, 'the flushed attempt is under way');
      await realUntil(() => m.snapshot().active === 0, 'the flushed attempt to end');
      mock.timers.tick(60_000);
      assert.deepEqual(pick(m.snapshot()), { active: 0, deferred: 3, held: 0 }, 'a minute later, no retry is under way or in line');
    } finally {
      mock.timers.reset();
    }
    await until(async () => (await spool.get(one.id))?.state.recipients[0]!.attempts === 1, 'the flushed attempt');
    assert.deepEqual(t.calls.map((c) => c.msg.id), [one.id]);
    assert.equal(t.calls.length, 1, 'a deferred recipient waits for the next flush too');
    m.flush('ALL');
    await until(() => t.calls.length === 4, 'all three tried');
    assert.deepEqual(t.calls.slice(1).map((c) => c.msg.id).sort(), [waiting.id, one.id, two.id].sort());
    await until(async () => (await spool.list()).length === 0, 'all delivered and removed');
  });

  it('defer_delivery turned off by a reload starts what waited', async () => {
    const t = new RecordingTransport(() => 'sent');
    const m = qmgr(t, { deferDelivery: true });
    const env = await put('a@client.test', ['b@example.net']);
    m.enqueue(env);
    await m.hold([env.id], true);
    await m.hold([env.id], false); // a release does not bypass the deferral either
    assert.ok(waits(m), 'released, not put in line');
    assert.equal(t.calls.length, 0);
    m.reconfigure({ routes: { localDomains: ['relay.test'], routes: [] }, hostname: 'relay.test',
      queue: { store: { kind: 'files' }, nodeName: 'test', leaseMs: 120_000, lifetimeMs: 86_400_000, retryMinMs: 60_000, retryMaxMs: 600_000, delayWarningMs: 0, deferDelivery: false } });
    await until(() => t.calls.length === 1, 'delivery after the reload');
    assert.match(lines.join(''), /warning: delivery resumed: \[queue\] defer_delivery is off/);
  });

  it('inflow() holds new mail back while delivery is behind, and lets it go when delivery catches up or after maxMs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const t = new RecordingTransport(() => 'sent');
    const slow: Transports = { deliver: async (d, m) => { await gate; return t.deliver(d, m); }, forgetDead: () => undefined };
    const m = qmgr(slow, {}, 1);
    let passed = false;
    const start = Date.now();
    await m.inflow(50); // nothing queued: at once
    assert.ok(Date.now() - start < 40);
    m.enqueue(await put('a@client.test', ['b@example.net']));
    const start2 = Date.now();
    await m.inflow(100); // behind: waits out maxMs
    assert.ok(Date.now() - start2 >= 90, `waited ${Date.now() - start2} ms`);
    const waiting = m.inflow(5000).then(() => { passed = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(passed, false, 'behind: waits for room');
    release();
    await waiting;
    assert.equal(passed, true);
  });
});
