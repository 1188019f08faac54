// End to end: `smarthost probe` (the built CLI) against test upstreams on 127.0.0.1 and raw
// net peers (one that never greets, one that speaks TLS from the first byte). One case per
// diagnosis that loopback can reproduce; the port-25 timeout is in src/probe/diagnose.test.ts
// and the DNS failure in src/probe/steps.test.ts (tests never ask real DNS).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, removeDir, tempDir, writeConfig } from '../helpers/daemon.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const USERS = { alice: 's3cret-Pa55' };

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs the CLI without blocking our event loop: the upstreams live in this process. */
function probe(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'probe', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function upstream(opts: UpstreamOptions): Promise<Upstream> {
  const up = await startUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}

/** A config file with the password file beside it; `toml` may use PASSWORD_FILE. */
function config(toml: string, password = USERS.alice): string {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const secret = path.join(dir, 'relay.secret');
  fs.writeFileSync(secret, `${password}\n`, { mode: 0o600 });
  return writeConfig(dir, toml.replaceAll('PASSWORD_FILE', secret));
}

const relay = (up: Upstream, extra: string) => `[relay]\nurl = "${up.url}"\n${extra}\n`;
const login = 'username = "alice"\npassword_file = "PASSWORD_FILE"';

/** The ✗ line of a step and the → / fix: lines under it. */
function failure(out: string, step: string): { line: string; diagnosis: string; fix: string } {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`✗ ${step} `));
  assert.ok(i >= 0, `no ✗ ${step} line in:\n${out}`);
  return { line: lines[i]!, diagnosis: lines[i + 1] ?? '', fix: lines[i + 2] ?? '' };
}

async function rawServer(onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => undefined); onConnection(s); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }));
  return (server.address() as net.AddressInfo).port;
}

describe('smarthost probe', () => {
  it('all green: STARTTLS (verify) + AUTH + --send-test delivers the test message, exit 0', async () => {
    const up = await upstream({ tls: 'starttls-required', auth: { users: USERS, required: true } });
    const file = config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"\n${login}`));
    const r = await probe(['--send-test', 'bob@example.net', '-c', file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const step of ['dns', 'connect', 'banner', 'ehlo', 'starttls', 'certificate', 'ehlo-tls', 'auth', 'mail', 'rcpt', 'data', 'quit']) {
      assert.match(r.stdout, new RegExp(`^✓ ${step} `, 'm'), r.stdout);
    }
    assert.match(r.stdout, /✓ certificate .*DNS:localhost.*IP Address:127\.0\.0\.1/);
    assert.match(r.stdout, /✓ auth .*"alice" with PLAIN/);
    assert.doesNotMatch(r.stdout, new RegExp(USERS.alice));
    const [m] = await up.waitForMessages(1);
    assert.deepEqual([m!.from, m!.to, m!.secure, m!.authUser], ['postmaster@relay.test', ['bob@example.net'], true, 'alice']);
    assert.match(m!.data.toString(), /Subject: smarthost probe test message/);
  });

  it('--json prints one object with every step; [rewrite] senders applies to MAIL FROM', async () => {
    const up = await upstream({ tls: 'starttls', auth: { users: USERS } });
    const file = config(`${relay(up, `tls = "verify"\nca_file = "${up.caFile}"\n${login}`)}[rewrite]\nsenders = { "@relay.test" = "alerts@example.com" }\n`);
    const r = await probe(['relay', '--json', '-c', file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; target: string; steps: Array<{ step: string; ok: boolean; detail: string; reply?: string }> };
    assert.equal(report.ok, true);
    assert.equal(report.target, up.url);
    assert.deepEqual(report.steps.map((s) => s.step), ['dns', 'connect', 'banner', 'ehlo', 'starttls', 'certificate', 'ehlo-tls', 'auth', 'mail', 'quit']);
    const mail = report.steps.find((s) => s.step === 'mail')!;
    assert.match(mail.detail, /<alerts@example\.com> accepted/);
    assert.match(mail.reply ?? '', /^250 /);
    assert.equal(up.messages.length, 0, 'no message without --send-test');
  });

  it('connection refused', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve())); // nothing listens there now
    const r = await probe(['--url', `smtp://127.0.0.1:${port}`, '-c', config('')]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'connect');
    assert.match(f.line, /Connection refused/);
    assert.match(f.diagnosis, /→ .*refused the connection: nothing listens on port/);
    assert.match(r.stdout, /^- banner .*not run/m);
  });

  it('smtps:// to a plain SMTP port: "this port speaks plain SMTP"', async () => {
    const up = await upstream({ tls: 'starttls' });
    const r = await probe(['--url', `smtps://127.0.0.1:${up.port}`, '--timeout', '3s', '-c', config('')]);
    assert.equal(r.status, 1, r.stdout);
    const f = failure(r.stdout, 'tls');
    assert.match(f.diagnosis, /this port speaks plain SMTP: it greeted in plaintext with "220 /);
    assert.match(f.fix, new RegExp(`fix: use smtp://127\\.0\\.0\\.1:${up.port} `));
  });

  it('smtp:// to an implicit-TLS port: no greeting, then a TLS handshake confirms it', async () => {
    const up = await upstream({ tls: 'implicit' });
    const r = await probe(['--url', `smtp://127.0.0.1:${up.port}`, '--timeout', '1s', '-c', config('')]);
    assert.equal(r.status, 1, r.stdout);
    const f = failure(r.stdout, 'banner');
    assert.match(f.diagnosis, /this port expects TLS from the first byte/);
    assert.match(f.fix, new RegExp(`fix: use smtps://127\\.0\\.0\\.1:${up.port}$`));
  });

  it('a server that never greets (and speaks no TLS either)', async () => {
    const port = await rawServer(() => undefined);
    const r = await probe(['--url', `smtp://127.0.0.1:${port}`, '--timeout', '1s', '-c', config('')]);
    assert.equal(r.status, 1, r.stdout);
    const f = failure(r.stdout, 'banner');
    assert.match(f.diagnosis, /sent no greeting within 1s \(it does not speak TLS on this port either\)/);
    assert.doesNotMatch(r.stdout, /smtps:/);
  });

  it('STARTTLS not offered with tls = "verify": mail would defer', async () => {
    const up = await upstream({ tls: 'none' });
    const r = await probe(['-c', config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"`))]);
    assert.equal(r.status, 1);
    assert.match(failure(r.stdout, 'starttls').diagnosis, /does not offer STARTTLS: with tls = "verify" mail to this upstream would be deferred/);
  });

  it('STARTTLS not offered with tls = "may" and credentials (a named route): credentials would not be sent', async () => {
    const up = await upstream({ tls: 'none', auth: { users: USERS, allowPlaintext: true } });
    const file = config(`[[route]]\nname = "corp"\ndomains = ["corp.example"]\nurl = "${up.url}"\ntls = "may"\n${login}\n`);
    const r = await probe(['corp', '-c', file]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^probe corp: smtp:/m);
    assert.match(failure(r.stdout, 'starttls').diagnosis, /credentials for "alice" would not be sent/);
    assert.equal(up.sessions.flatMap((s) => s.authAttempts).length, 0, 'no AUTH over plaintext');
  });

  for (const [cert, expected] of [
    ['expired', /has expired/],
    ['selfSigned', /is self-signed/],
    ['wrongName', /is for other names: .*DNS:wrong\.example/],
  ] as const) {
    it(`certificate ${cert}`, async () => {
      const up = await upstream({ tls: 'starttls', cert });
      const r = await probe(['-c', config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"`))]);
      assert.equal(r.status, 1, r.stdout);
      const f = failure(r.stdout, 'certificate');
      assert.match(f.line, /names DNS:/);
      assert.match(f.diagnosis, expected);
    });
  }

  it('AUTH not offered before TLS (tls = "none")', async () => {
    const up = await upstream({ tls: 'starttls', auth: { users: USERS } });
    const r = await probe(['-c', config(relay(up, `tls = "none"\n${login}`))]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'auth');
    assert.match(f.diagnosis, /offers STARTTLS but no AUTH before TLS/);
    assert.match(f.fix, /tls = "verify"/);
  });

  it('credentials rejected: names the username and mechanism, never the password', async () => {
    const up = await upstream({ tls: 'starttls', auth: { users: USERS } });
    const file = config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"\n${login}\nmechanisms = ["LOGIN"]`), 'wrong-Passw0rd');
    const r = await probe(['-c', file]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'auth');
    assert.match(f.line, /535 5\.7\.8/);
    assert.match(f.diagnosis, /rejected username "alice" with the password from password_file .*relay\.secret \(AUTH LOGIN\)/);
    assert.doesNotMatch(r.stdout + r.stderr, /wrong-Passw0rd/);
  });

  it('"authentication required" at MAIL without a username', async () => {
    const up = await upstream({ tls: 'starttls', auth: { users: USERS, required: true } });
    const r = await probe(['-c', config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"`))]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'mail');
    assert.match(f.line, /530 5\.7\.0 Authentication required/);
    assert.match(f.fix, /add username and password_file \(or password_env\) to \[relay\]/);
  });

  it('sender rejected as a return address: suggests [rewrite] senders', async () => {
    const up = await upstream({ tls: 'starttls', faults: [{ stage: 'mail', action: 'reply', reply: '553 5.1.8 Sender address rejected: Domain not found' }] });
    const r = await probe(['-c', config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"`))]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'mail');
    assert.match(f.diagnosis, /rejected the sender <postmaster@relay\.test> as a return address/);
    assert.match(f.fix, /\[rewrite\] senders = \{ "@relay\.test" = "you@yourdomain" \}/);
  });

  it('relay denied at RCPT', async () => {
    const up = await upstream({ tls: 'starttls', faults: [{ stage: 'rcpt', action: 'reply', reply: '554 5.7.1 <bob@example.net>: Relay access denied' }] });
    const r = await probe(['--send-test', 'bob@example.net', '-c', config(relay(up, `tls = "verify"\nca_file = "${up.caFile}"`))]);
    assert.equal(r.status, 1);
    const f = failure(r.stdout, 'rcpt');
    assert.match(f.diagnosis, /will not relay mail to <bob@example\.net>/);
    assert.match(r.stdout, /^- data .*not run/m);
    assert.equal(up.messages.length, 0);
  });

  it('usage errors exit 64; an invalid config exits 78', async () => {
    const none = await probe(['-c', config('')]);
    assert.equal(none.status, 64);
    assert.match(none.stderr, /has no \[relay\]: give a ROUTE name or --url/);
    const unknown = await probe(['nope', '-c', config('')]);
    assert.equal(unknown.status, 64);
    assert.match(unknown.stderr, /no route named "nope"/);
    const bad = await probe(['-c', config('[relay]\nurl = "[smtp.example.com]:587"\n')]);
    assert.equal(bad.status, 78);
  });
});
