// End to end: `smarthost probe` (the built CLI) against test upstreams on 127.0.0.1 and raw
// net peers (one that never greets, one that speaks TLS from the first byte). One case per
// diagnosis that loopback can reproduce; the port-25 timeout is in src/probe/diagnose.test.ts
// and the DNS failure in src/probe/steps.test.ts (tests never ask real DNS). Also: auth = "oauth2"
// against test/peers/oauth-server.ts, and a route with a url list and fallback_urls.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLI, removeDir, tempDir, writeConfig } from '../helpers/daemon.js';
import { startOAuthServer, type OAuthServer } from '../peers/oauth-server.js';
import { startRawServer } from '../peers/raw-server.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';
import { freePort } from '../helpers/ports.js';

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
  const raw = await startRawServer(onConnection);
  cleanups.push(() => raw.close());
  return raw.port;
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
    const port = await freePort(); // nothing listens there now
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
    assert.match(f.diagnosis, /this port speaks plain SMTP \(it greeted in plaintext with "220 /);
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
    assert.match(failure(r.stdout, 'starttls').diagnosis, /does not offer STARTTLS, so with tls = "verify" mail to this upstream is deferred/);
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
    ['wrongName', /is for other names \(DNS:wrong\.example\)/],
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

  it('a route with a url list and fallback_urls: one section per URL, the closed first URL is passed over', async () => {
    const port = await freePort();
    const dead = `smtp://127.0.0.1:${port}`;
    const good = await upstream({ tls: 'starttls', auth: { users: USERS } });
    const spare = await upstream({ tls: 'starttls', auth: { users: USERS } });
    const file = config(`[[route]]\nname = "corp"\ndomains = ["corp.example"]\nurl = ["${dead}", "${good.url}"]\nfallback_urls = ["${spare.url}"]\n` +
      `tls = "verify"\nca_file = "${good.caFile}"\n${login}\n`);
    const r = await probe(['corp', '-c', file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const headings = r.stdout.split('\n').filter((l) => l.startsWith('== '));
    assert.deepEqual(headings, [
      `== primary 1 of 2: ${dead} (tls = "verify") ==`, `== primary 2 of 2: ${good.url} (tls = "verify") ==`, `== fallback 1 of 1: ${spare.url} (tls = "verify") ==`,
    ], r.stdout);
    assert.match(failure(r.stdout, 'connect').diagnosis, /refused the connection/);
    assert.match(r.stdout, new RegExp(`^OK: mail would use ${good.url} first \\(${dead} failed at connect\\)$`, 'm'));

    const json = await probe(['corp', '--json', '-c', file]);
    assert.equal(json.status, 0, json.stdout + json.stderr);
    const report = JSON.parse(json.stdout) as { ok: boolean; first: string; targets: Array<{ role: string; target: string; ok: boolean; steps: unknown[] }> };
    assert.equal(report.first, good.url);
    assert.deepEqual(report.targets.map((t) => [t.role, t.target, t.ok]), [['primary', dead, false], ['primary', good.url, true], ['fallback', spare.url, true]]);

    // only the fallback works: not OK, but the summary says where mail would end up
    await good.close();
    const down = await probe(['corp', '-c', file]);
    assert.equal(down.status, 1, down.stdout);
    assert.match(down.stdout, new RegExp(`^FAILED: no primary URL passed; mail would go to the fallback ${spare.url} only after every primary URL defers`, 'm'));
  });
});

describe('smarthost probe with auth = "oauth2"', () => {
  const MAILBOX = 'alice@example.com';

  async function oauthSetup(accept?: () => boolean): Promise<{ oauth: OAuthServer; file: string; tokenFile: string; refresh: string }> {
    const oauth = await startOAuthServer({ expiresIn: 3600 });
    cleanups.push(() => oauth.close());
    const up = await upstream({ tls: 'starttls', auth: { users: {}, required: true, methods: ['XOAUTH2'] }, oauth: { isValid: accept ?? oauth.isValid } });
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const tokenFile = path.join(dir, 'relay.oauth');
    const refresh = oauth.issueRefreshToken();
    fs.writeFileSync(tokenFile, `${refresh}\n`, { mode: 0o600 });
    const file = writeConfig(dir, `[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\nusername = "${MAILBOX}"\nauth = "oauth2"\n` +
      `token_url = "${oauth.tokenUrl}"\nclient_id = "test-client"\nrefresh_token_file = "${tokenFile}"\n`);
    return { oauth, file, tokenFile, refresh };
  }

  const noTokens = (out: string) => assert.doesNotMatch(out, /\b(at|rt)-[A-Za-z0-9_-]{6,}/, 'no access or refresh token in the output');

  it('green: a refreshed token logs in with XOAUTH2; the rotated refresh token lands in refresh_token_file', async () => {
    const s = await oauthSetup();
    const r = await probe(['-c', s.file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^✓ auth +logged in as "${MAILBOX}" with XOAUTH2 \\(freshly refreshed OAuth2 access token from ${s.oauth.tokenUrl}\\): 235`, 'm'));
    assert.equal(s.oauth.refreshes.length, 1);
    const saved = fs.readFileSync(s.tokenFile, 'utf8').trim();
    assert.notEqual(saved, s.refresh, 'the rotated refresh token was saved where the token source saves it');
    noTokens(r.stdout + r.stderr);
  });

  it('a revoked refresh token: token refresh failed, quoting invalid_grant, and says to sign in again', async () => {
    const s = await oauthSetup();
    s.oauth.revokeRefreshTokens();
    const r = await probe(['-c', s.file]);
    assert.equal(r.status, 1, r.stdout);
    const f = failure(r.stdout, 'auth');
    assert.match(f.line, /token refresh failed/);
    assert.match(f.diagnosis, /→ no OAuth2 access token: OAuth2 token refresh for alice@example\.com at .* failed: invalid_grant \(Token has been expired or revoked\.\)$/);
    assert.match(f.fix, /fix: run "smarthost oauth login relay" to sign in again/);
    assert.match(r.stdout, /^- mail .*not run/m);
    noTokens(r.stdout + r.stderr);
  });

  it('the server refuses a fresh token: names the mailbox and says to check SMTP AUTH and the scope', async () => {
    const s = await oauthSetup(() => false);
    const r = await probe(['-c', s.file]);
    assert.equal(r.status, 1, r.stdout);
    const f = failure(r.stdout, 'auth');
    assert.match(f.line, /535 .*\(mailbox "alice@example\.com", XOAUTH2\)/);
    assert.match(f.diagnosis, /refused a freshly refreshed access token \(so it has not expired\) for mailbox "alice@example\.com" \(AUTH XOAUTH2\) \(error challenge: status 400/);
    assert.match(f.fix, /SMTP AUTH is enabled for the mailbox alice@example\.com.*scope/);
    assert.equal(s.oauth.refreshes.length, 1, 'a fresh token is not refreshed again');
    noTokens(r.stdout + r.stderr);
  });
});
