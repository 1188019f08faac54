import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { OutgoingMessage } from '../mail/delivery.js';
import { LocalTransport } from './local.js';
import { LocalRecipients } from './recipients.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-local-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const recipients = new LocalRecipients({
  domains: ['localhost'], users: ['alice', 'bob'],
  aliases: { ops: ['alice', 'pager@example.net'], team: ['alice', 'bob'], root: ['alice'] },
});

function message(rcpts: string[], body: string, sender = 'carol@example.org'): OutgoingMessage {
  return {
    id: 'TESTID', sender, recipients: rcpts.map((address) => ({ address })), size: body.length, eightBit: false,
    body: () => Readable.from([Buffer.from(body, 'latin1')]),
  };
}

function transport(maildir: string, resubmit: (s: string, to: readonly string[], m: Buffer) => Promise<string>) {
  return new LocalTransport({ recipients, maildir, hostname: 'relay.test', chown: false, resubmit });
}

const files = (user: string, root = path.join(dir, 'mail')) => {
  const d = path.join(root, user, 'new');
  return fs.existsSync(d) ? fs.readdirSync(d).map((f) => fs.readFileSync(path.join(d, f), 'latin1')) : [];
};

describe('local delivery agent', () => {
  it('writes one Maildir copy per mailbox per message, with Return-Path, Delivered-To and LF line ends', async () => {
    const t = transport(path.join(dir, 'mail', '{user}'), async () => assert.fail('nothing to forward'));
    const res = await t.deliver(message(['alice@localhost', 'team@localhost', 'root@localhost'], 'Subject: hi\r\n\r\nbody\r\n'));
    assert.deepEqual(res.map((r) => [r.rcpt, r.outcome, r.dsn.status, r.dsn.reason, r.relay]), [
      ['alice@localhost', 'sent', '2.0.0', 'delivered to maildir', 'local'],
      ['team@localhost', 'sent', '2.0.0', 'delivered to maildir', 'local'],
      ['root@localhost', 'sent', '2.0.0', 'delivered to maildir', 'local'],
    ]);
    assert.deepEqual(files('alice'), ['Return-Path: <carol@example.org>\nDelivered-To: alice@localhost\nSubject: hi\n\nbody\n'], 'alice once, not three times');
    assert.equal(files('bob').length, 1);
  });

  it('queues the outside targets of an alias as a new message with Delivered-To, keeping the sender', async () => {
    const calls: Array<{ sender: string; to: readonly string[]; text: string }> = [];
    const t = transport(path.join(dir, 'fwd', '{user}'), async (sender, to, m) => { calls.push({ sender, to, text: m.toString('latin1') }); return 'NEWID'; });
    const [r] = await t.deliver(message(['ops@localhost'], 'Subject: page\r\n\r\nup\r\n'));
    assert.equal(r!.dsn.reason, 'delivered to maildir, forwarded as NEWID');
    assert.deepEqual(calls, [{ sender: 'carol@example.org', to: ['pager@example.net'], text: 'Delivered-To: ops@localhost\r\nSubject: page\r\n\r\nup\r\n' }]);
  });

  it('bounces a message that already went through this address (forwarding loop), unknown users and alias loops', async () => {
    const t = transport(path.join(dir, 'loop', '{user}'), async () => 'X');
    const res = await t.deliver(message(['ops@localhost', 'nobody@localhost'], 'Delivered-To: ops@localhost\r\nSubject: again\r\n\r\nx\r\n'));
    assert.deepEqual(res.map((r) => [r.outcome, r.dsn.status, r.dsn.reason]), [
      ['bounced', '5.4.6', 'mail forwarding loop for ops@localhost'],
      ['bounced', '5.1.1', 'unknown user: "nobody"'],
    ]);
  });

  it('defers when the Maildir cannot be written or the forwarded copy cannot be queued', async () => {
    fs.writeFileSync(path.join(dir, 'a-file'), 'x');
    const t = transport(path.join(dir, 'a-file', '{user}'), async () => { throw new Error('disk full'); });
    const [box] = await t.deliver(message(['alice@localhost'], 'x\r\n'));
    assert.equal(box!.outcome, 'deferred');
    assert.equal(box!.dsn.status, '4.2.0');
    assert.match(box!.dsn.reason, /^cannot write to maildir .*a-file\/alice: ENOTDIR /);
    const t2 = transport(path.join(dir, 'ok', '{user}'), async () => { throw new Error('disk full'); });
    const [fwd] = await t2.deliver(message(['ops@localhost'], 'x\r\n'));
    assert.deepEqual([fwd!.outcome, fwd!.dsn.status, fwd!.dsn.reason], ['deferred', '4.3.0', 'cannot queue the forwarded copy: disk full; will try again']);
  });
});
