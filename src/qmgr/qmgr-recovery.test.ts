// The queue manager at start, against a real spool in a temp dir filled
// directly in the spool format (test/helpers/spool-files.ts): what it keeps
// of a message between attempts, and the background recovery (every message
// delivered once, whatever comes in or is asked for while it runs).
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import { MailLog } from '../maillog/maillog.js';
import { FsSpool } from '../queue/fs-spool.js';
import { writeQueueFiles } from '../../test/helpers/spool-files.js';
import { waitFor } from '../../test/helpers/wait.js';
import { QueueManager, type Transports } from './qmgr.js';

/** Delivers everything; remembers each message as the transport saw it, with its body. */
class Recorder implements Transports {
  readonly seen: Array<{ id: string; sender: string; body: string }> = [];
  async deliver(_dest: unknown, msg: OutgoingMessage): Promise<RcptResult[]> {
    const chunks: Buffer[] = [];
    for await (const c of msg.body()) chunks.push(c as Buffer);
    this.seen.push({ id: msg.id, sender: msg.sender, body: Buffer.concat(chunks).toString('latin1') });
    return msg.recipients.map(({ address }) => ({ rcpt: address, outcome: 'sent', dsn: { status: '2.0.0', reason: '250 ok' }, relay: 'up[127.0.0.1]:25', connectMs: 0, transmitMs: 0 }) as RcptResult);
  }
  forgetDead(): void { /* nothing is dead here */ }
}

describe('QueueManager at start', () => {
  let dir: string;
  let spool: FsSpool;
  let lines: string[];
  let log: MailLog;
  let m: QueueManager | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmgr-recovery-test-'));
    spool = new FsSpool(dir, { recycle: true });
    lines = [];
    log = new MailLog({ format: 'postfix', hostname: 'relay.test', sink: { write: (l) => { lines.push(l); } } });
  });
  afterEach(async () => {
    await m?.close(100);
    await spool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const qmgr = (t: Transports) => (m = new QueueManager({
    spool, log, transports: t, hostname: 'relay.test', routes: { localDomains: ['relay.test'], routes: [] },
    queue: { store: { kind: 'files' }, nodeName: 'test', leaseMs: 120_000, lifetimeMs: 86_400_000, retryMinMs: 60_000, retryMaxMs: 600_000, delayWarningMs: 0, deferDelivery: false },
  }));
  // (1,500 deliveries on a busy machine take a while: up to a minute)
  const until = (cond: () => boolean, what: string) => waitFor(cond, () => `${what}\n${lines.slice(-20).join('')}`, 3000, 20);

  it('keeps no envelope of a deferred message: an attempt reads it from the spool as it is then', async () => {
    const at = Date.now() - 3_600_000;
    const ids = writeQueueFiles(dir, 3, { deferred: true, sender: 'early@client.test', at });
    const t = new Recorder();
    const report = await qmgr(t).start();
    assert.equal(report.messages, 3);
    assert.equal(t.seen.length, 0, 'deferred for an hour: not tried at start');
    // the same ids written again with another sender: only a queue manager that kept the envelopes would still say "early"
    writeQueueFiles(dir, 3, { deferred: true, sender: 'later@client.test', at });
    assert.deepEqual((await m!.act('flush', 'ALL')).done.sort(), ids);
    await until(() => t.seen.length === 3, 'three deliveries');
    assert.deepEqual(t.seen.map((s) => s.sender), ['later@client.test', 'later@client.test', 'later@client.test']);
  });

  it('delivers every message once when mail comes in, verbs name messages and flush ALL is asked while recovery runs', async () => {
    const recovered = writeQueueFiles(dir, 1500, { deferred: true });
    const t = new Recorder();
    const q = qmgr(t);
    const started = q.start();
    assert.equal(q.isRecovering, true);
    // named by id before recovery reached it: read from the spool on demand
    const last = recovered[recovered.length - 1]!;
    const held = await q.act('hold', [last]);
    assert.deepEqual(held.done, [last]);
    // asked while recovery runs: applies to what is known and to each message read later
    const flushed = await q.act('flush', 'ALL');
    assert.equal(flushed.recovering, true);
    const fresh: string[] = [];
    for (let i = 0; i < 20; i++) {
      const inc = await spool.receive({ sender: 'new@client.test', recipients: [{ address: `n${i}@example.net` }], arrived: new Date().toISOString(),
        client: { address: '127.0.0.1', hostname: 'localhost', helo: 'x', protocol: 'ESMTP' } });
      await inc.write(Buffer.from(`Subject: new ${i}\r\n\r\nbody ${i}\r\n`));
      const env = await inc.commit();
      q.enqueue(env);
      fresh.push(env.id);
    }
    const report = await started;
    assert.equal(report.messages, 1500, 'what was there at start, not the mail that came in meanwhile');
    assert.equal(report.discarded, 0);
    await until(() => t.seen.length === 1499 + 20, 'every message but the held one');
    const ids = t.seen.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, 'none delivered twice');
    assert.deepEqual([...ids].sort(), [...recovered.slice(0, -1), ...fresh].sort());
    for (const s of t.seen.filter((x) => fresh.includes(x.id))) assert.match(s.body, /^Subject: new \d+\r\n\r\nbody \d+\r\n$/, 'new mail intact');
    assert.equal((await spool.get(last))?.state.held, true, 'the held one waits, held on disk');
  });
});
