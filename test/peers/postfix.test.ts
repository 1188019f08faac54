// Self-test of the Postfix provider peer: its ports demand what a real provider demands
// (STARTTLS before AUTH, AUTH before relaying, verified TLS, 535 on a wrong password),
// mail lands in the Maildirs, relayTo forwards, and stop() leaves nothing running.
// Without Postfix these tests fail on purpose: CI installs it through .ci/run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { SMTPServer } from 'smtp-server';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { postfixAvailable, startPostfixProvider, type PostfixProvider } from './postfix.js';

test('Postfix is installed (run .ci/run to install postfix, sasl2-bin and libsasl2-modules)', () => {
  assert.ok(postfixAvailable(), '/usr/sbin/postfix or saslpasswd2 missing: run .ci/run, which installs them');
});

describe('Postfix provider', () => {
  let p: PostfixProvider;
  before(async () => { p = await startPostfixProvider(); });
  after(async () => {
    // Whatever the tests did, Postfix itself must not have hit a fatal error or a panic.
    const bad = p?.log().split('\n').filter((l) => /: (fatal|panic):/.test(l)) ?? [];
    await p?.stop();
    assert.deepEqual(bad, []);
  });

  test('AUTH PLAIN after STARTTLS delivers to the Maildir', async () => {
    const c = await connect({ port: p.starttlsPort, requireTLS: true, tls: { ca: fs.readFileSync(p.caFile), servername: 'localhost' } });
    await login(c, 'alice@provider.test', p.users['alice@provider.test']!, 'PLAIN');
    await send(c, 'sender@example.com', 'alice@provider.test', message('over STARTTLS'));
    c.quit();
    const [msg] = await p.waitForMail('alice', 1);
    const text = msg!.toString('latin1');
    assert.match(text, /^Return-Path: <sender@example\.com>\r?\n/);
    assert.match(text, /Subject: over STARTTLS/);
    assert.match(text, /Received: from .*\n.*\(using TLSv1\.[23]/);
    assert.match(p.log(), /submission\/smtpd\[\d+\]: \w+: client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice@provider\.test/);
  });

  test('implicit TLS port verifies against caFile and takes AUTH LOGIN', async () => {
    const c = await connect({ port: p.implicitPort, secure: true, tls: { ca: fs.readFileSync(p.caFile), servername: 'localhost' } });
    assert.equal(c.secureConnection, true);
    await login(c, 'bob@provider.test', p.users['bob@provider.test']!, 'LOGIN');
    await send(c, 'sender@example.com', 'bob@provider.test', message('over implicit TLS'));
    c.quit();
    const [msg] = await p.waitForMail('bob@provider.test', 1);
    assert.match(msg!.toString('latin1'), /Subject: over implicit TLS/);
  });

  test('implicit TLS port fails verification without the CA', async () => {
    await assert.rejects(connect({ port: p.implicitPort, secure: true, tls: { servername: 'localhost' } }),
      (err: Error) => /self[- ]signed|unable to (get|verify)/i.test(err.message));
  });

  test('AUTH before STARTTLS is refused and not even offered', async () => {
    const c = await RawSmtp.connect(p.starttlsPort);
    assert.equal((await c.read()).code, 220);
    const ehlo = await c.cmd('EHLO client.test');
    assert.match(ehlo.text, /STARTTLS/);
    assert.doesNotMatch(ehlo.text, /AUTH/);
    const auth = await c.cmd(`AUTH PLAIN ${plain('alice@provider.test', p.users['alice@provider.test']!)}`);
    assert.equal(auth.code, 530, auth.text); // 5.7.0 Must issue a STARTTLS command first
    const mail = await c.cmd('MAIL FROM:<sender@example.com>');
    assert.equal(mail.code, 530, mail.text);
    c.close();
  });

  test('a wrong password gets 535', async () => {
    const c = await RawSmtp.connect(p.starttlsPort);
    await c.read();
    await c.cmd('EHLO client.test');
    assert.equal((await c.starttls()).code, 220);
    assert.match((await c.cmd('EHLO client.test')).text, /AUTH PLAIN LOGIN|AUTH LOGIN PLAIN/);
    const r = await c.cmd(`AUTH PLAIN ${plain('alice@provider.test', 'wrong')}`);
    assert.equal(r.code, 535, r.text);
    assert.match(r.text, /5\.7\.8/);
    c.close();
  });

  test('unauthenticated clients cannot send through the AUTH ports', async () => {
    const c = await RawSmtp.connect(p.starttlsPort);
    await c.read();
    await c.cmd('EHLO client.test');
    await c.starttls();
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd('MAIL FROM:<sender@example.com>')).code, 250);
    // Not even the local domain: submission needs AUTH for every recipient.
    for (const rcpt of ['someone@example.net', 'alice@provider.test']) {
      const r = await c.cmd(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 554, r.text);
      assert.match(r.text, /5\.7\.1/);
    }
    c.close();
  });

  test('plain port takes mail for the local domain only, without AUTH', async () => {
    const c = await RawSmtp.connect(p.plainPort);
    await c.read();
    const ehlo = await c.cmd('EHLO client.test');
    assert.doesNotMatch(ehlo.text, /AUTH/);
    assert.equal((await c.cmd('MAIL FROM:<sender@example.com>')).code, 250);
    const relay = await c.cmd('RCPT TO:<someone@example.net>');
    assert.equal(relay.code, 554, relay.text);
    assert.match(relay.text, /Relay access denied/);
    const unknown = await c.cmd('RCPT TO:<nobody@provider.test>');
    assert.equal(unknown.code, 550, unknown.text);
    await c.cmd('RSET');
    const r = await sendRaw(c, 'sender@example.com', ['postmaster@provider.test'], `${message('plain port')}\r\n.\r\n`);
    assert.equal(r.code, 250, r.text);
    c.close();
    const [msg] = await p.waitForMail('postmaster', 1);
    assert.match(msg!.toString('latin1'), /Subject: plain port/);
  });
});

describe('Postfix provider instances', () => {
  test('two run side by side; stop() leaves no process and no directory', async () => {
    const [a, b] = await Promise.all([startPostfixProvider(), startPostfixProvider()]);
    try {
      assert.equal(new Set([a.starttlsPort, a.implicitPort, a.plainPort, b.starttlsPort, b.implicitPort, b.plainPort]).size, 6);
      const pids = [a, b].map((x) => Number(fs.readFileSync(`${x.dir}/queue/pid/master.pid`, 'utf8').trim()));
      for (const pid of pids) assert.ok(alive(pid), `master ${pid} runs`);
      await Promise.all([a.stop(), b.stop()]);
      for (const pid of pids) assert.deepEqual(liveGroupMembers(pid), [], `processes left in group ${pid}`);
      assert.equal(fs.existsSync(a.dir) || fs.existsSync(b.dir), false);
      await a.stop(); // idempotent
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('relayTo forwards other domains from 127.0.0.0/8 without AUTH', async () => {
    const received: string[] = [];
    const sink = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
      onData(stream, session, cb) {
        let body = '';
        stream.on('data', (d: Buffer) => { body += d.toString('latin1'); });
        stream.on('end', () => { received.push(`${session.envelope.rcptTo.map((r) => r.address).join(',')}\n${body}`); cb(); });
      },
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const port = (sink.server.address() as { port: number }).port;
    const p = await startPostfixProvider({ relayTo: { host: '127.0.0.1', port } });
    try {
      const c = await RawSmtp.connect(p.plainPort);
      await c.read();
      await c.cmd('EHLO client.test');
      const r = await sendRaw(c, 'sender@example.com', ['someone@example.net'], `${message('relayed')}\r\n.\r\n`);
      assert.equal(r.code, 250, r.text);
      c.close();
      await waitFor(() => received.length > 0, () => `a message relayed by Postfix; its log:\n${p.log()}`, 200, 50);
      assert.equal(received.length, 1, p.log());
      assert.match(received[0]!, /^someone@example\.net\n[\s\S]*Subject: relayed/);
      assert.match(p.log(), /to=<someone@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/);
    } finally {
      await p.stop();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });
});

// ---- helpers ----

type Options = ConstructorParameters<typeof SMTPConnection>[0];

function connect(options: Options): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', name: 'client.test', connectionTimeout: 5000, ...options });
    c.once('error', reject);
    c.connect(() => { c.removeListener('error', reject); c.on('error', () => undefined); resolve(c); });
  });
}

function login(c: SMTPConnection, user: string, pass: string, method: 'PLAIN' | 'LOGIN'): Promise<void> {
  return new Promise((resolve, reject) => c.login({ user, pass, method }, (err) => (err ? reject(err) : resolve())));
}

function send(c: SMTPConnection, from: string, to: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => c.send({ from, to: [to] }, body, (err) => (err ? reject(err) : resolve())));
}

function message(subject: string): string {
  return `From: <sender@example.com>\r\nTo: <rcpt@provider.test>\r\nSubject: ${subject}\r\nMessage-ID: <${Date.now()}.${Math.random()}@example.com>\r\n\r\nHello.\r\n`;
}

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function liveGroupMembers(pgid: number): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
    try {
      const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(pgrp) === pgid && state !== 'Z';
    } catch { return false; }
  }).map(Number);
}
