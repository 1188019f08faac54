// End to end (issue 21, limits): messages per session, the TLS handshake deadline
// (STARTTLS and implicit TLS), and command lines ending in a bare LF from clients
// outside trusted_networks.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';

const BODY = 'Subject: t\r\n\r\nhello\r\n.\r\n';

async function session(port: number, localAddress = '127.0.0.1'): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port, { localAddress });
  assert.equal((await c.read()).code, 220);
  return c;
}

describe('messages_per_session, tls_handshake_timeout, forbid_bare_newline', () => {
  let d: RunningDaemon;
  let plain: number;
  let starttls: number;
  let implicit: number;
  before(async () => {
    d = await startDaemon({
      toml: `
[[listen]]
address = "127.0.0.1:0"
trusted_networks = ["127.0.0.1/32"]

[[listen]]
address = "127.0.0.1:0"
tls = "starttls"
trusted_networks = ["127.0.0.1/32"]

[[listen]]
address = "127.0.0.1:0"
tls = "implicit"

[limits]
messages_per_session = 2
idle_timeout = "1h"
tls_handshake_timeout = "1s"
`,
    });
    [plain, starttls, implicit] = d.ports as [number, number, number];
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  it('the MAIL after messages_per_session gets 421 4.7.0 and the session ends (Exim smtp_accept_max_per_connection)', async () => {
    const c = await session(plain);
    await c.cmd('EHLO c.test');
    for (let i = 0; i < 2; i++) assert.match((await sendRaw(c, 'a@example.com', ['root@localhost'], BODY)).text, /^250 2\.0\.0 Ok: queued as /);
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).text, '421 4.7.0 relay.test Error: too many messages in this session');
    await c.waitClosed();
    await d.waitForLog(/too many messages after MAIL from localhost\[127\.0\.0\.1\]/);
  });

  it('a STARTTLS handshake that stalls after one byte is cut at tls_handshake_timeout, long before idle_timeout', async () => {
    const c = await session(starttls);
    await c.cmd('EHLO c.test');
    assert.equal((await c.cmd('STARTTLS')).code, 220);
    c.write(Buffer.from([0x16])); // the first byte of a TLS record, then nothing
    await c.waitClosed(10_000);
    await d.waitForLog(/SSL_accept error from localhost\[127\.0\.0\.1\]: TLS handshake timeout\n.*lost connection after STARTTLS from localhost\[127\.0\.0\.1\]/);
  });

  it('an implicit TLS handshake that stalls is cut too; a session whose handshake completed stays', async () => {
    const good = await RawSmtp.connect(implicit, { tls: true });
    assert.equal((await good.read()).code, 220);
    const stalled = net.connect({ port: implicit, host: '127.0.0.1' });
    await new Promise((resolve) => stalled.once('connect', resolve));
    stalled.write(Buffer.from([0x16]));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the stalled handshake is still open')), 10_000);
      stalled.once('close', () => { clearTimeout(timer); resolve(); });
    });
    await d.waitForLog(/SSL_accept error from unknown\[127\.0\.0\.1\]: TLS handshake timeout\n.*lost connection after CONNECT from unknown\[127\.0\.0\.1\]/);
    // the stalled client was cut after its deadline; the one that finished its handshake before is still served
    assert.equal((await good.cmd('NOOP')).text, '250 2.0.0 Ok');
    good.close();
  });

  it('a command line ending in a bare LF from outside trusted_networks gets 550 5.5.2 and the session ends (Postfix smtpd_forbid_bare_newline)', async () => {
    const c = await session(plain, '127.0.0.2');
    assert.equal((await c.cmd('EHLO c.test')).code, 250);
    c.write('NOOP\n');
    assert.equal((await c.read()).text, '550 5.5.2 relay.test Error: bare <LF> received');
    await c.waitClosed();
    await d.waitForLog(/bare <LF> received after NOOP from [^ ]*\[127\.0\.0\.2\]/);
  });

  it('message content is not judged: pipelined commands, a body with a bare LF, then the next command line is', async () => {
    const c = await session(plain, '127.0.0.3');
    await c.cmd('EHLO c.test');
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n');
    for (const code of [250, 250, 354]) assert.equal((await c.read()).code, code);
    c.write('Subject: t\r\n\r\nNOOP\nEHLO inside content\r\n.\r\nRSET\r\nNOOP\n');
    assert.match((await c.read()).text, /^250 2\.0\.0 Ok: queued as /);
    assert.equal((await c.read()).code, 250, 'RSET, ended by CRLF');
    assert.equal((await c.read()).text, '550 5.5.2 relay.test Error: bare <LF> received');
    await c.waitClosed();
  });

  it('inside TLS the endings are checked too; trusted clients stay lenient', async () => {
    const c = await session(starttls, '127.0.0.4');
    await c.cmd('EHLO c.test');
    assert.equal((await c.starttls()).code, 220);
    c.write('EHLO c.test\n');
    assert.equal((await c.read()).text, '550 5.5.2 relay.test Error: bare <LF> received');
    await c.waitClosed();
    const t = await session(plain, '127.0.0.1');
    t.write('EHLO c.test\n');
    assert.equal((await t.read()).code, 250);
    t.write('NOOP\n');
    assert.equal((await t.read()).text, '250 2.0.0 Ok');
    t.close();
  });
});

describe('forbid_bare_newline = false', () => {
  it('accepts command lines ending in a bare LF from anyone', async () => {
    const d = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\ntrusted_networks = []\n[limits]\nforbid_bare_newline = false\n' });
    try {
      const c = await session(d.ports[0]!, '127.0.0.2');
      c.write('EHLO c.test\n');
      assert.equal((await c.read()).code, 250);
      c.write('NOOP\n');
      assert.equal((await c.read()).text, '250 2.0.0 Ok');
      c.close();
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });
});
