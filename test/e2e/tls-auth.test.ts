// End to end: STARTTLS and implicit TLS listeners, SASL AUTH PLAIN/LOGIN
// against the users file, throttling of failed AUTH across connections,
// starttls-required refusals and the STARTTLS command injection case.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { removeDir, runCli, spoolMessages, startDaemon, tempDir, writeConfig, launch, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const PASSWORD = 'correct horse battery';

describe('TLS and AUTH', () => {
  let d: RunningDaemon;
  let optional: number;     // starttls, auth optional, untrusted
  let required: number;     // starttls-required, auth required
  let implicit: number;     // implicit TLS, auth required
  let plaintext: number;    // no TLS, auth optional with allow_plaintext_auth
  before(async () => {
    const dir = tempDir();
    const configFile = writeConfig(dir, `
[[listen]]
address = "127.0.0.1:0"
tls = "starttls"
auth = "optional"
trusted_networks = []

[[listen]]
address = "127.0.0.1:0"
tls = "starttls-required"
auth = "required"

[[listen]]
address = "127.0.0.1:0"
tls = "implicit"
auth = "required"

[[listen]]
address = "127.0.0.1:0"
auth = "optional"
allow_plaintext_auth = true
trusted_networks = []

[limits]
auth_failures = "3/1h"
`);
    const add = runCli(['user', 'add', 'alice', '--password-stdin', '-c', configFile], { input: PASSWORD + '\n' });
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /added alice/);
    d = await launch(dir, configFile);
    [optional, required, implicit, plaintext] = d.ports as [number, number, number, number];
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  it('offers AUTH only after STARTTLS, and generates a self-signed certificate with a warning', async () => {
    assert.match(d.logs(), /warning: generated a self-signed certificate for relay\.test/);
    const c = await RawSmtp.connect(optional);
    assert.match((await c.read()).text, /^220 relay\.test ESMTP smarthost$/);
    const before = await c.cmd('EHLO c.test');
    assert.ok(before.lines.some((l) => l.endsWith('STARTTLS')));
    assert.ok(!before.lines.some((l) => l.includes('AUTH')), before.text);
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`)).text, '530 5.7.0 Must issue a STARTTLS command first');
    assert.equal((await c.starttls()).text, '220 2.0.0 Ready to start TLS');
    const afterTls = await c.cmd('EHLO c.test');
    assert.ok(afterTls.lines.some((l) => /AUTH PLAIN LOGIN$/.test(l)), afterTls.text);
    assert.ok(!afterTls.lines.some((l) => l.endsWith('STARTTLS')));
    assert.match(c.tlsSocket!.getProtocol() ?? '', /TLSv1\.[23]/);
    c.close();
  });

  it('AUTH PLAIN and LOGIN succeed; the authenticated user may relay; Received and log show it', async () => {
    const c = await RawSmtp.connect(optional);
    await c.read();
    await c.cmd('EHLO c.test');
    await c.starttls();
    await c.cmd('EHLO c.test');
    assert.equal((await c.cmd('AUTH LOGIN')).text, '334 VXNlcm5hbWU6');
    assert.equal((await c.cmd(b64('alice'))).text, '334 UGFzc3dvcmQ6');
    assert.equal((await c.cmd(b64(PASSWORD))).text, '235 2.7.0 Authentication successful');
    await c.cmd('MAIL FROM:<alice@example.com>');
    assert.equal((await c.cmd('RCPT TO:<far@example.net>')).code, 250);
    await c.cmd('DATA');
    c.write('Subject: auth\r\n\r\nx\r\n.\r\n');
    const id = /queued as (\w+)/.exec((await c.read()).text)![1]!;
    await c.cmd('QUIT');
    await d.waitForLog(new RegExp(`${id}: client=localhost\\[127\\.0\\.0\\.1\\], sasl_method=LOGIN, sasl_username=alice`));
    const m = spoolMessages(d.dataDir).find((s) => s.id === id)!;
    const body = m.body.toString();
    assert.match(body, /\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)/);
    assert.doesNotMatch(body, /Authenticated sender|alice/, 'the login name stays out of Received by default (Postfix smtpd_sasl_authenticated_header = no)');
    assert.match(body, new RegExp(`with ESMTPSA id ${id}`));
    assert.equal((m.envelope.client as Record<string, unknown>).authUser, 'alice');
  });

  it('AUTH PLAIN that asks to act as someone else (authzid) is refused with 535 and logged; the same identity twice is fine', async () => {
    const c = await RawSmtp.connect(optional);
    await c.read();
    await c.cmd('EHLO c.test');
    await c.starttls();
    await c.cmd('EHLO c.test');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`bob\0alice\0${PASSWORD}`)}`)).text, '535 5.7.8 Error: authentication failed');
    await d.waitForLog(/authorization identity "bob" differs from the user \(\[auth\] allow_authzid\)/);
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`alice\0alice\0${PASSWORD}`)}`)).text, '235 2.7.0 Authentication successful');
    c.close();
  });

  it('nodemailer with requireTLS and AUTH PLAIN relays through the starttls-required listener', async () => {
    const t = nodemailer.createTransport({
      host: '127.0.0.1', port: required, secure: false, requireTLS: true, tls: { rejectUnauthorized: false },
      auth: { user: 'alice', pass: PASSWORD }, authMethod: 'PLAIN',
    });
    const info = await t.sendMail({ from: 'alice@example.com', to: 'x@example.net', subject: 's', text: 't' });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as/);
  });

  it('swaks with --tls and AUTH PLAIN works; wrong password gets 535 5.7.8', () => {
    const ok = spawnSync('swaks', ['--server', `127.0.0.1:${required}`, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', PASSWORD,
      '--from', 'alice@example.com', '--to', 'y@example.net'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
    assert.match(ok.stdout, /<~ {2}250 2\.0\.0 Ok: queued as/);
  });

  it('implicit TLS: TLS from the first byte (openssl s_client), AUTH required before MAIL', async () => {
    // each line once the reply before it is in (the greeting first: smarthost refuses early talkers)
    const out = await sClient(['-connect', `127.0.0.1:${implicit}`, '-quiet', '-verify_quiet'],
      [[/^220 /m, 'EHLO s.test\r\nMAIL FROM:<a@example.com>\r\n'], [/^530 /m, 'QUIT\r\n']]);
    assert.match(out, /220 relay\.test ESMTP smarthost/);
    assert.match(out, /250-AUTH PLAIN LOGIN/);
    assert.match(out, /530 5\.7\.0 Authentication required/);
    const c = await RawSmtp.connect(implicit, { tls: true });
    await c.read();
    await c.cmd('EHLO s.test');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`)).code, 235);
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).code, 250);
    c.close();
  });

  it('starttls-required: only EHLO/HELO/STARTTLS/NOOP/RSET/QUIT before TLS', async () => {
    const c = await RawSmtp.connect(required);
    await c.read();
    assert.equal((await c.cmd('EHLO c.test')).code, 250);
    assert.equal((await c.cmd('NOOP')).code, 250);
    assert.equal((await c.cmd('RSET')).code, 250);
    for (const cmd of ['MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.net>', 'DATA', 'AUTH PLAIN', 'VRFY root', 'HELP', 'ETRN x']) {
      assert.equal((await c.cmd(cmd)).text, '530 5.7.0 Must issue a STARTTLS command first', cmd);
    }
    const s = await RawSmtp.connect(required);
    await s.read();
    await s.cmd('EHLO c.test');
    await s.starttls();
    await s.cmd('EHLO c.test');
    assert.equal((await s.cmd('MAIL FROM:<a@example.com>')).text, '530 5.7.0 Authentication required');
    c.close(); s.close();
  });

  it('discards plaintext pipelined with STARTTLS (CVE-2011-0411)', async () => {
    const c = await RawSmtp.connect(optional);
    await c.read();
    await c.cmd('EHLO c.test');
    // the injected commands arrive in the same packet as STARTTLS
    c.write('STARTTLS\r\nRSET\r\nMAIL FROM:<inject@example.com>\r\n');
    const r = await c.read();
    assert.equal(r.text, '220 2.0.0 Ready to start TLS');
    const tls = await import('node:tls');
    const plain = (c as unknown as { socket: import('node:net').Socket }).socket;
    plain.removeAllListeners('data');
    const t = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    let got = '';
    t.on('data', (b: Buffer) => { got += b.toString(); });
    t.write('MAIL FROM:<a@example.com>\r\n');
    await waitFor(() => got.endsWith('\r\n'), () => `a reply to MAIL, got ${JSON.stringify(got)}`);
    // the first and only reply is to our MAIL: nothing answered the injected plaintext, and the
    // session state was reset (MAIL before EHLO is refused)
    assert.match(got, /^503 5\.5\.1 Error: send HELO\/EHLO first\r\n$/);
    t.destroy();
  });

  it('plaintext AUTH only where allow_plaintext_auth is set; failures are throttled per address across connections', async () => {
    const tryAuth = async (ip: string, password: string) => {
      const c = await RawSmtp.connect(plaintext, { localAddress: ip });
      await c.read();
      const e = await c.cmd('EHLO c.test');
      assert.ok(e.lines.some((l) => /AUTH PLAIN LOGIN$/.test(l)), 'AUTH offered without TLS here');
      const r = await c.cmd(`AUTH PLAIN ${b64(`\0alice\0${password}`)}`);
      c.close();
      return r.text;
    };
    // 3 failures allowed in the window (auth_failures = "3/1h"), each on a new connection
    for (let i = 0; i < 3; i++) assert.equal(await tryAuth('127.0.0.5', 'wrong'), '535 5.7.8 Error: authentication failed');
    // now even the right password is refused with 421 and the connection is closed
    assert.match(await tryAuth('127.0.0.5', PASSWORD), /^421 4\.7\.0 Error: too many failed authentication attempts, try again in (59|60) minutes$/);
    // another address is not affected
    assert.equal(await tryAuth('127.0.0.6', PASSWORD), '235 2.7.0 Authentication successful');
    // 127.0.0.5 is "localhost" where /etc/hosts names it so, else "unknown": one pattern for both, no waiting out the first
    await d.waitForLog(/warning: (?:localhost|unknown)\[127\.0\.0\.5\]: SASL PLAIN authentication failed: authentication failure, sasl_username=alice/);
  });

  it('user list/passwd/del manage the users file; the daemon picks up changes without restart', async () => {
    assert.match(d.cli(['user', 'list']).stdout, /^alice$/m);
    assert.equal(d.cli(['user', 'add', 'bob', '--password-stdin'], 'bobs password\n').status, 0);
    assert.equal(d.cli(['user', 'add', 'bob', '--password-stdin'], 'again again\n').status, 65);
    const short = d.cli(['user', 'add', 'carol', '--password-stdin'], 'short\n');
    assert.equal(short.status, 64);
    assert.match(short.stderr, /at least 8 characters/);
    const c = await RawSmtp.connect(implicit, { tls: true });
    await c.read();
    await c.cmd('EHLO c.test');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0bob\0bobs password')}`)).code, 235);
    c.close();
    assert.equal(d.cli(['user', 'del', 'bob']).status, 0);
    assert.equal(d.cli(['user', 'del', 'bob']).status, 67);
    const fs = await import('node:fs');
    const text = fs.readFileSync(`${d.dataDir}/users`, 'utf8');
    assert.doesNotMatch(text, new RegExp(PASSWORD));
    assert.match(text, /^alice:\$scrypt\$/m);
    assert.equal(fs.statSync(`${d.dataDir}/users`).mode & 0o777, 0o600);
  });
});

/** openssl s_client with `args`: writes each step's text once its output matches the step's pattern; resolves with the output at exit. */
function sClient(args: string[], steps: Array<[RegExp, string]>): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => { p.kill(); reject(new Error(`openssl s_client: stuck at ${steps[0]?.[0]}:\n${out}`)); }, 10_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      while (steps.length && steps[0]![0].test(out)) p.stdin.write(steps.shift()![1]);
    });
    p.on('exit', () => { clearTimeout(timer); resolve(out); });
  });
}
