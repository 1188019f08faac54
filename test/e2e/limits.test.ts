// End to end: every limit smarthost enforces on inbound sessions, each with
// the reply a client sees: message size (SIZE and while streaming),
// recipients, connections in total and per address, command line length,
// idle and DATA deadlines (slow trickle), too many errors, control characters.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, spoolMessages, startDaemon, queueLeftovers, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function session(port: number, localAddress?: string): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port, localAddress ? { localAddress } : {});
  const g = await c.read();
  assert.equal(g.code, 220, g.text);
  await c.cmd('EHLO limits.test');
  return c;
}

describe('limits', () => {
  let d: RunningDaemon;
  let port: number;
  /** From now, a wait for the next "lost connection after DATA" line (the listener logs it once the partial message is gone). */
  const nextLostInData = () => {
    const line = 'smtpd\\[\\d+\\]: lost connection after DATA from localhost\\[127\\.0\\.0\\.1\\]';
    const n = d.logs().match(new RegExp(line, 'g'))?.length ?? 0;
    return () => d.waitForLog(new RegExp(`(?:${line}[^]*){${n + 1}}`));
  };
  before(async () => {
    d = await startDaemon({
      toml: `
[[listen]]
address = "127.0.0.1:0"

[limits]
message_size = "10KB"
recipients = 3
connections = 6
connections_per_ip = 3
line_length = 1000
idle_timeout = "1500ms"
data_timeout = "2s"
errors = 5
junk_commands = 10
header_size = "2KB"
`,
    });
    port = d.ports[0]!;
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  it('refuses a declared SIZE over the limit at MAIL FROM', async () => {
    const c = await session(port);
    assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=20000')).text, '552 5.3.4 Message size exceeds fixed limit');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=2000')).code, 250);
    c.close();
  });

  it('refuses an oversized message while streaming and stores nothing', async () => {
    const before = spoolMessages(d.dataDir).length;
    const c = await session(port);
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@example.net>');
    await c.cmd('DATA');
    c.write('Subject: big\r\n\r\n' + ('x'.repeat(76) + '\r\n').repeat(300) + '.\r\n');
    assert.equal((await c.read()).text, '552 5.3.4 Message size exceeds fixed limit');
    // the session goes on
    assert.equal((await c.cmd('NOOP')).text, '250 2.0.0 Ok');
    c.close();
    assert.equal(spoolMessages(d.dataDir).length, before);
  });

  it('refuses a header section over header_size with 552 5.3.4 and stores nothing; a big body under small headers is fine', async () => {
    const before = spoolMessages(d.dataDir).length;
    const c = await session(port);
    const send = async (text: string) => {
      await c.cmd('MAIL FROM:<a@example.com>');
      await c.cmd('RCPT TO:<b@example.net>');
      await c.cmd('DATA');
      c.write(text + '.\r\n');
      return (await c.read()).text;
    };
    const fields = Array.from({ length: 60 }, (_, i) => `X-Junk-${i}: ${'y'.repeat(40)}\r\n`).join(''); // about 3.5 KB
    assert.equal(await send(`Subject: many fields\r\n${fields}\r\nbody\r\n`), '552 5.3.4 Message header size exceeds fixed limit');
    assert.equal(spoolMessages(d.dataDir).length, before, 'nothing stored');
    assert.match(await send(`Subject: small\r\n\r\n${('z'.repeat(76) + '\r\n').repeat(60)}`), /^250 2\.0\.0 Ok: queued as /);
    c.close();
  });

  it('refuses recipients over the limit with 452 4.5.3', async () => {
    const c = await session(port);
    await c.cmd('MAIL FROM:<a@example.com>');
    for (let i = 1; i <= 3; i++) assert.equal((await c.cmd(`RCPT TO:<r${i}@example.net>`)).code, 250);
    assert.equal((await c.cmd('RCPT TO:<r4@example.net>')).text, '452 4.5.3 Error: too many recipients');
    c.close();
  });

  it('limits connections per client address and in total with 421 4.7.0', async () => {
    const mine = await Promise.all([1, 2, 3].map(() => session(port, '127.0.0.11')));
    const fourth = await RawSmtp.connect(port, { localAddress: '127.0.0.11' });
    assert.equal((await fourth.read()).text, '421 4.7.0 Error: too many connections from 127.0.0.11');
    await fourth.waitClosed();
    const others = await Promise.all([1, 2, 3].map(() => session(port, '127.0.0.12')));
    const seventh = await RawSmtp.connect(port, { localAddress: '127.0.0.13' });
    assert.equal((await seventh.read()).text, '421 4.7.0 Error: too many connections');
    [...mine, ...others].forEach((c) => c.close());
    // slots are freed when sessions end (before their disconnect line is logged)
    for (const ip of ['127\\.0\\.0\\.11', '127\\.0\\.0\\.12']) await d.waitForLog(new RegExp(`(?:disconnect from [^\\n]*\\[${ip}\\][^]*){3}`));
    const again = await session(port, '127.0.0.11');
    again.close();
  });

  it('closes the session on a command line longer than line_length', async () => {
    const c = await session(port);
    const r = await c.cmd('MAIL FROM:<' + 'a'.repeat(2000) + '@example.com>');
    assert.equal(r.text, '421 4.7.0 relay.test Error: command line too long');
    await c.waitClosed();
  });

  it('disconnects an idle client after idle_timeout with 421 4.4.2', async () => {
    const c = await session(port);
    const r = await c.read(5000);
    assert.equal(r.text, '421 4.4.2 relay.test Error: timeout exceeded');
    await c.waitClosed();
    await d.waitForLog(/timeout after EHLO from localhost\[127\.0\.0\.1\]/);
  });

  it('disconnects a client trickling a command one byte at a time', async () => {
    const c = await session(port);
    const line = 'MAIL FROM:<slow@example.com>\r\n';
    let closed = false;
    const reply = c.read(8000).finally(() => { closed = true; });
    for (let i = 0; i < line.length && !closed; i++) { c.write(line[i]!); await sleep(250); }
    assert.equal((await reply).text, '421 4.4.2 relay.test Error: timeout exceeded');
  });

  it('disconnects a client trickling DATA past data_timeout, storing nothing', async () => {
    const before = spoolMessages(d.dataDir).length;
    const lostInData = nextLostInData();
    const c = await session(port);
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@example.net>');
    await c.cmd('DATA');
    let closed = false;
    const reply = c.read(8000).finally(() => { closed = true; });
    for (let i = 0; i < 40 && !closed; i++) { c.write('x'); await sleep(200); }
    assert.equal((await reply).text, '421 4.4.2 relay.test Error: timeout exceeded');
    await c.waitClosed();
    await lostInData(); // logged once the partial message is removed
    assert.equal(spoolMessages(d.dataDir).length, before);
    assert.deepEqual(queueLeftovers(d.dataDir), [], 'no partial file left in the queue');
  });

  it('a client that drops the connection in the middle of DATA: logged, nothing stored, no partial file', async () => {
    const before = spoolMessages(d.dataDir).length;
    const lostInData = nextLostInData();
    const c = await session(port);
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@example.net>');
    assert.equal((await c.cmd('DATA')).code, 354); // smtp-server starts onData (intake) before it sends 354
    c.write('Subject: cut short\r\n\r\n' + 'half a message\r\n'.repeat(200));
    c.close();
    await lostInData(); // logged once the partial message is removed
    assert.equal(spoolMessages(d.dataDir).length, before);
    assert.deepEqual(queueLeftovers(d.dataDir), [], 'no partial file left in the queue');
  });

  it('disconnects after too many errors', async () => {
    const c = await session(port);
    const replies: string[] = [];
    for (let i = 0; i < 4; i++) replies.push((await c.cmd('BOGUS')).text);
    assert.deepEqual(replies, Array(4).fill('502 5.5.2 Error: command not recognized'));
    c.write('BOGUS\r\n');
    assert.equal((await c.read()).text, '502 5.5.2 Error: command not recognized');
    assert.equal((await c.read()).text, '421 4.7.0 relay.test Error: too many errors');
    await c.waitClosed();
  });

  it('past junk_commands, each NOOP/VRFY/RSET counts as an error, so a NOOP loop meets the error limit (Postfix smtpd_junk_command_limit)', async () => {
    const c = await session(port);
    for (let i = 0; i < 14; i++) assert.equal((await c.cmd(i % 2 ? 'NOOP' : 'RSET')).code, 250, `junk command ${i + 1}`);
    assert.equal((await c.cmd('NOOP')).text, '421 4.7.0 relay.test Error: too many errors');
    await c.waitClosed();
    await d.waitForLog(/too many errors after NOOP from localhost\[127\.0\.0\.1\]/);
  });

  it('hangs up on an HTTP request or proxy CONNECT with Postfix\'s reply', async () => {
    for (const line of ['CONNECT mail.example.com:25 HTTP/1.1', 'POST http://relay.test/ HTTP/1.0', 'GET / HTTP/1.1']) {
      const c = await session(port);
      assert.equal((await c.cmd(line)).text, '221 2.7.0 Error: I can break rules, too. Goodbye.', line);
      await c.waitClosed();
    }
    await d.waitForLog(/non-SMTP command after CONNECT from localhost\[127\.0\.0\.1\]/);
  });

  it('refuses control characters in EHLO, MAIL and RCPT with 501', async () => {
    const c = await session(port);
    assert.equal((await c.cmd('EHLO bad\x01host')).text, '501 5.5.2 Syntax error: control characters are not allowed in EHLO');
    assert.equal((await c.cmd('MAIL FROM:<a\x7f@example.com>')).text, '501 5.5.2 Syntax error: control characters are not allowed in MAIL');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<b@example.net>\x00')).text, '501 5.5.2 Syntax error: control characters are not allowed in RCPT');
    c.close();
  });
});

describe('SIZE= above the free space', () => {
  it('gets 452 4.3.1 at MAIL FROM, before the client uploads anything; a SIZE that fits goes on', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs (CI runs as root)');
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dataDir]).status, 0, 'mount a 1 MiB tmpfs');
    let d: RunningDaemon | undefined;
    try {
      d = await startDaemon({ dir, toml: '[[listen]]\naddress = "127.0.0.1:0"\n' });
      const c = await session(d.ports[0]!);
      assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=5000000')).text, '452 4.3.1 Insufficient system storage');
      assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=2000')).code, 250);
      c.close();
      await d.waitForLog(/NOQUEUE: reject: MAIL from localhost\[127\.0\.0\.1\]: 452 4\.3\.1 Insufficient system storage/);
    } finally {
      await d?.stop();
      spawnSync('umount', [dataDir]);
      removeDir(dir);
    }
  });
});

describe('connection_rate', () => {
  it('refuses a client outside trusted_networks past N connections a minute with 421, and logs it; trusted clients are not rated', async () => {
    const d = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\ntrusted_networks = ["127.0.0.1/32"]\n[limits]\nconnection_rate = "3/1m"\n' });
    try {
      const greet = async (localAddress: string) => {
        const c = await RawSmtp.connect(d.ports[0]!, { localAddress });
        const g = await c.read();
        c.close();
        return g.text;
      };
      for (let i = 0; i < 3; i++) assert.match(await greet('127.0.0.2'), /^220 /);
      assert.equal(await greet('127.0.0.2'), '421 4.7.0 Error: too many connections from 127.0.0.2');
      for (let i = 0; i < 5; i++) assert.match(await greet('127.0.0.1'), /^220 /, 'trusted');
      await d.waitForLog(/too many connections from 127\.0\.0\.2 after CONNECT from [^ ]+\[127\.0\.0\.2\]/);
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });
});
