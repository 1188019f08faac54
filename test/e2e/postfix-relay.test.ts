// End to end against a real Postfix set up like a provider (test/peers/postfix.ts):
// STARTTLS on one port, TLS from the first byte on another, Cyrus SASL users.
// What arrives in the provider's mailbox is our message, intact, with the
// headers a provider adds (ESMTPSA, the authenticated user).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startPostfixProvider, type PostfixProvider } from '../peers/postfix.js';

describe('relaying to a real Postfix provider', () => {
  let pf: PostfixProvider;
  const daemons: RunningDaemon[] = [];
  before(async () => { pf = await startPostfixProvider(); });
  after(async () => {
    for (const d of daemons) { await d.stop(); removeDir(d.dir); }
    await pf?.stop();
  });

  async function relay(url: string, password: string): Promise<RunningDaemon> {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'provider.secret'), password + '\n', { mode: 0o600 });
    const d = await startDaemon({
      dir, toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${url}"\ntls = "verify"\nca_file = "${pf.caFile}"\n` +
        `username = "alice@provider.test"\npassword_file = "${path.join(dir, 'provider.secret')}"\n[queue]\nretry_min = "1h"\nretry_max = "2h"\n`,
    });
    daemons.push(d);
    return d;
  }

  const body = (tag: string) => `From: App <app@relay.test>\r\nTo: <alice@provider.test>\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@relay.test>\r\n\r\nfirst line\r\n..dot line\r\n\xc3\xa9t\xc3\xa9\r\n`;

  for (const [name, port, scheme] of [['STARTTLS (submission)', () => pf.starttlsPort, 'smtp'], ['implicit TLS (smtps)', () => pf.implicitPort, 'smtps']] as const) {
    it(`delivers over ${name} with SASL, intact and with the provider's headers`, async () => {
      const d = await relay(`${scheme}://127.0.0.1:${port()}`, pf.users['alice@provider.test']!);
      const tag = `pf-${scheme}-${Date.now()}`;
      const before = pf.mailbox('alice').length; // the other test may have delivered to alice already
      const id = await submit(d.ports[0]!, 'app@relay.test', ['alice@provider.test'], { body: body(tag) });
      await d.waitForLog(new RegExp(`${id}: to=<alice@provider\\.test>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port()}, .*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok: queued as \\w+\\)`), 15_000);
      const mail = (await pf.waitForMail('alice', before + 1, 15_000)).map((m) => m.toString('utf8')).find((m) => m.includes(tag));
      assert.ok(mail, 'the message is in the mailbox');
      const crlf = mail.replace(/\r?\n/g, '\r\n');
      assert.match(crlf, /^Return-Path: <app@relay\.test>\r\n/);
      assert.match(crlf, /Received: from relay\.test \(localhost \[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.[23] [^]*?\tby provider\.test \(Postfix\) with ESMTPSA id \w+/, 'Postfix took it with TLS and AUTH (ESMTPSA)');
      assert.match(crlf, new RegExp(`Received: from client\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test \\(smarthost\\) with ESMTP id ${id}`));
      assert.ok(crlf.endsWith('\r\n\r\nfirst line\r\n.dot line\r\n\u00e9t\u00e9\r\n'), crlf);
      assert.match(crlf, new RegExp(`^Subject: ${tag}\\r$`, 'm'));
      assert.match(pf.log(), /sasl_method=(PLAIN|LOGIN), sasl_username=alice@provider\.test/);
    });
  }

  it('a wrong password is deferred with Postfix\'s 535 and the username that was tried', async () => {
    const d = await relay(`smtp://127.0.0.1:${pf.starttlsPort}`, 'not-the-password');
    const id = await submit(d.ports[0]!, 'app@relay.test', ['alice@provider.test']);
    const line = await d.waitForLog(new RegExp(`${id}: to=<alice@provider\\.test>, .*status=deferred \\(.*\\)`), 15_000);
    assert.match(line, /SASL PLAIN authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: authentication failed: .*; the server rejected username "alice@provider\.test" with the password from password_file .*provider\.secret \(AUTH PLAIN\); check the username and the password/);
  });
});
