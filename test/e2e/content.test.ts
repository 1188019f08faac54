// End to end: what reaches the spool. Line ends normalised to CRLF so SMTP
// smuggling sequences can never end a message at the next hop, dot-stuffing
// round-trips exactly, 8-bit bytes pass untouched, and a looping message
// (too many Received headers) is refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spoolMessages, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';

/** Everything after our own Received header (which ends at the line with the date). */
function afterReceived(body: Buffer): Buffer {
  const end = body.indexOf(Buffer.from('\r\n', 'latin1'), body.indexOf(Buffer.from('\tfor <', 'latin1')));
  return body.subarray(end + 2);
}

function assertOnlyCrlf(buf: Buffer): void {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0d) assert.equal(buf[i + 1], 0x0a, `bare CR at ${i}: ${JSON.stringify(buf.toString('latin1'))}`);
    if (buf[i] === 0x0a) assert.equal(buf[i - 1], 0x0d, `bare LF at ${i}: ${JSON.stringify(buf.toString('latin1'))}`);
  }
}

describe('content safety', () => {
  let d: RawSmtp | undefined;
  let daemon: RunningDaemon;
  before(async () => {
    daemon = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\n[limits]\nhops = 5\n' });
  });
  after(async () => { d?.close(); await daemon.stop(); removeDir(daemon.dir); });

  async function deliver(raw: Buffer | string): Promise<{ reply: string; stored?: Buffer; queued: number }> {
    const c = await RawSmtp.connect(daemon.ports[0]!);
    await c.read();
    await c.cmd('EHLO content.test');
    const r = await sendRaw(c, 'a@example.com', ['b@example.net'], raw);
    // a smuggled second message would show up as extra replies here
    const extra = await c.cmd('NOOP');
    c.close();
    const id = /queued as (\w+)/.exec(r.text)?.[1];
    const stored = id ? spoolMessages(daemon.dataDir).find((m) => m.id === id)?.body : undefined;
    return { reply: r.text + (extra.text === '250 2.0.0 Ok' ? '' : ` | then ${extra.text}`), ...(stored ? { stored } : {}), queued: spoolMessages(daemon.dataDir).length };
  }

  for (const [name, seq] of [['\\n.\\r\\n', '\n.\r\n'], ['\\r.\\r', '\r.\r'], ['\\r\\n.\\r', '\r\n.\r'], ['\\n.\\n', '\n.\n']] as const) {
    it(`stores ${name} inside DATA as one message with CRLF only`, async () => {
      const before = spoolMessages(daemon.dataDir).length;
      const smuggle = `Subject: s\r\n\r\nfirst${seq}MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled\r\n`;
      const r = await deliver(smuggle + '.\r\n');
      assert.match(r.reply, /^250 2\.0\.0 Ok: queued as \w+$/);
      assert.equal(r.queued, before + 1, 'exactly one message queued');
      const body = afterReceived(r.stored!);
      assertOnlyCrlf(r.stored!);
      assert.ok(body.toString('latin1').includes('MAIL FROM:<evil@example.com>\r\n'), 'the smuggled text stays inside the one message');
    });
  }

  it('round-trips dot-stuffing exactly', async () => {
    // ". " was not stuffed by its client: its dot goes all the same (RFC 5321 §4.5.2)
    const r = await deliver('Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n. \r\nx.\r\n..\r\n.\r\n');
    assert.equal(afterReceived(r.stored!).toString('latin1'), 'Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n \r\nx.\r\n.\r\n');
  });

  it('passes 8-bit and UTF-8 bytes through unchanged', async () => {
    const text = Buffer.concat([Buffer.from('Subject: =?utf-8?q?x?=\r\n\r\n'), Buffer.from('Grüße, 日本 \xff\xfe\r\n', 'latin1'), Buffer.from('.\r\n')]);
    const r = await deliver(text);
    assert.deepEqual(afterReceived(r.stored!), text.subarray(0, text.length - 3));
  });

  it('refuses a message with too many Received headers: 554 5.4.6', async () => {
    const before = spoolMessages(daemon.dataDir).length;
    const hops = Array.from({ length: 5 }, (_, i) => `Received: from h${i}.example by h${i + 1}.example; Sun, 22 Nov 2026 10:00:0${i} +0000\r\n`).join('');
    const r = await deliver(`${hops}Subject: loop\r\n\r\nloop\r\n.\r\n`);
    assert.equal(r.reply, '554 5.4.6 Too many hops');
    assert.equal(r.queued, before);
    await daemon.waitForLog(/reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 554 5\.4\.6 Too many hops/);
    // four existing hops (plus ours) are fine, and a Received line in the body does not count
    const ok = await deliver(`${hops.split('\r\n').slice(1).join('\r\n')}Subject: ok\r\n\r\nReceived: in the body\r\n.\r\n`);
    assert.match(ok.reply, /^250 /);
  });
});
