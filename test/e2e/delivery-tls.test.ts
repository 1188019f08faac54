// End to end: outbound TLS levels and SASL credentials against a real
// upstream. Mandatory TLS never falls back to plaintext, credentials never
// cross an unencrypted connection, and every failure says what went wrong.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const USERS = { alice: 's3cret-Pa55' };

async function setup(upstream: UpstreamOptions, relay: (up: Upstream, dir: string) => string, env: Record<string, string> = {}): Promise<{ up: Upstream; d: RunningDaemon }> {
  const up = await startUpstream(upstream);
  cleanups.push(() => up.close());
  const dir = tempDir();
  const secret = path.join(dir, 'relay.secret');
  fs.writeFileSync(secret, `${USERS.alice}\n`, { mode: 0o600 });
  Object.assign(process.env, env); // the daemon inherits our environment (password_env)
  const d = await startDaemon({ dir, toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\n${relay(up, dir)}\n[queue]\nretry_min = "1h"\nretry_max = "2h"\n` });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  return { up, d };
}

const withPassword = (dir: string) => `username = "alice"\npassword_file = "${path.join(dir, 'relay.secret')}"`;

async function deferredReason(d: RunningDaemon, id: string): Promise<string> {
  const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
  return /status=deferred \((.*)\)$/.exec(line)![1]!;
}

describe('outbound TLS and SASL', () => {
  it('STARTTLS with verify (ca_file) and AUTH PLAIN: delivered encrypted and authenticated', async () => {
    const { up, d } = await setup({ tls: 'starttls-required', auth: { users: USERS, required: true } },
      (u, dir) => `tls = "verify"\nca_file = "${u.caFile}"\n${withPassword(dir)}`);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.secure, true);
    assert.match(m!.tlsVersion ?? '', /^TLSv1\.[23]$/);
    assert.equal(m!.authUser, 'alice');
    assert.equal(m!.authMethod, 'PLAIN');
  });

  it('smtps:// (TLS from the first byte) with AUTH LOGIN and password_env', async () => {
    const { up, d } = await setup({ tls: 'implicit', auth: { users: USERS, required: true } },
      (u) => `tls = "verify"\nca_file = "${u.caFile}"\nusername = "alice"\npassword_env = "SMARTHOST_TEST_RELAY_PW"\nmechanisms = ["LOGIN"]`,
      { SMARTHOST_TEST_RELAY_PW: USERS.alice });
    assert.match(up.url, /^smtps:/);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.secure, true);
    assert.equal(m!.authMethod, 'LOGIN');
  });

  it('uses CRAM-MD5 when mechanisms allows it and the upstream offers it', async () => {
    const { up, d } = await setup({ tls: 'starttls', auth: { users: USERS, required: true, methods: ['CRAM-MD5'] } },
      (u, dir) => `tls = "verify"\nca_file = "${u.caFile}"\n${withPassword(dir)}\nmechanisms = ["CRAM-MD5"]`);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.authMethod, 'CRAM-MD5');
  });

  it('defers, naming both lists, when the upstream offers no mechanism that mechanisms allows', async () => {
    const { up, d } = await setup({ tls: 'starttls', auth: { users: USERS, required: true, methods: ['CRAM-MD5'] } },
      (u, dir) => `tls = "verify"\nca_file = "${u.caFile}"\n${withPassword(dir)}\nmechanisms = ["PLAIN"]`);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    assert.match(await deferredReason(d, id), /^no common SASL mechanism with 127\.0\.0\.1\[127\.0\.0\.1\]; the server offers AUTH CRAM-MD5, but mechanisms = \["PLAIN"\] allows none of them; add one of them, e\.g\. mechanisms = \["CRAM-MD5"\]$/);
    assert.equal(up.messages.length, 0);
  });

  it('never sends credentials when STARTTLS is missing (tls = "may"): AUTH is not attempted and the mail defers', async () => {
    const { up, d } = await setup({ tls: 'none', auth: { users: USERS, allowPlaintext: true } }, (_u, dir) => `tls = "may"\n${withPassword(dir)}`);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const reason = await deferredReason(d, id);
    assert.match(reason, /^AUTH not attempted for 127\.0\.0\.1\[127\.0\.0\.1\]; the server does not offer STARTTLS, so with tls = "may" mail would go in plaintext, and the credentials for "alice" would not be sent; /);
    assert.deepEqual(up.sessions.flatMap((s) => s.authAttempts), []);
    assert.ok(up.sessions.every((s) => !s.commands.some((c) => /^(AUTH|MAIL)/i.test(c))), JSON.stringify(up.sessions.map((s) => s.commands)));
    assert.equal(up.messages.length, 0);
  });

  it('tls = "encrypt" never falls back to plaintext when STARTTLS is not offered', async () => {
    const { up, d } = await setup({ tls: 'none' }, () => 'tls = "encrypt"');
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    assert.match(await deferredReason(d, id), /^TLS is required, but host 127\.0\.0\.1\[127\.0\.0\.1\] did not start TLS: 5\d\d /);
    assert.ok(up.sessions.every((s) => !s.commands.some((c) => /^MAIL/i.test(c))));
  });

  for (const [cert, expected] of [
    ['expired', /the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] has expired/],
    ['selfSigned', /the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] is self-signed/],
    ['wrongName', /the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] is for other names \(DNS:wrong\.example\); use a url with one of those names/],
  ] as const) {
    it(`tls = "verify" defers a ${cert} certificate and says so`, async () => {
      const { up, d } = await setup({ tls: 'starttls', cert }, (u) => `tls = "verify"\nca_file = "${u.caFile}"`);
      const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
      const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*dsn=4\\.7\\.5, status=deferred \\(.*\\)`));
      assert.match(line, expected);
      assert.equal(up.messages.length, 0);
    });
  }

  it('tls = "encrypt" accepts a self-signed certificate (encrypted, not verified)', async () => {
    const { up, d } = await setup({ tls: 'starttls', cert: 'selfSigned' }, () => 'tls = "encrypt"');
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.secure, true);
  });

  it('a rejected password (535) defers and names the credentials used, never the password', async () => {
    const { up, d } = await setup({ tls: 'starttls', auth: { users: { alice: 'other' }, required: true } },
      (u, dir) => `tls = "verify"\nca_file = "${u.caFile}"\n${withPassword(dir)}`);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const reason = await deferredReason(d, id);
    assert.match(reason, /^SASL PLAIN authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 .*; the server rejected username "alice" with the password from password_file .*relay\.secret \(AUTH PLAIN\); check the username and the password in password_file /);
    assert.doesNotMatch(d.logs(), new RegExp(USERS.alice));
    assert.equal(up.messages.length, 0);
  });

  it('"Authentication required" from an upstream we did not log in to says to add a username', async () => {
    const { d } = await setup({ tls: 'starttls', auth: { users: USERS, required: true } }, (u) => `tls = "verify"\nca_file = "${u.caFile}"`);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=\\w+ \\(.*\\)`));
    assert.match(line, /530 5\.7\.0 Authentication required \(in reply to MAIL FROM command\); the server wants a login before MAIL FROM; add username and password_file \(or password_env\) to \[relay\]\)$/);
  });

  it('allow_plaintext_auth = true sends credentials without TLS (a local stunnel)', async () => {
    const { up, d } = await setup({ tls: 'none', auth: { users: USERS, required: true, allowPlaintext: true } },
      (_u, dir) => `tls = "none"\nallow_plaintext_auth = true\n${withPassword(dir)}`);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.secure, false);
    assert.equal(m!.authUser, 'alice');
  });

  it('presents a client certificate when configured', async () => {
    const { testCerts } = await import('../peers/certs.js');
    const c = testCerts();
    const { up, d } = await setup({ tls: 'starttls', requireClientCert: true },
      (u) => `tls = "verify"\nca_file = "${u.caFile}"\nclient_certificate = "${c.client.certFile}"\nclient_key = "${c.client.keyFile}"`);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    await up.waitForMessages(1);
    assert.ok(up.sessions.some((s) => s.clientCertSubject === 'CN=smarthost test client'), JSON.stringify(up.sessions));
  });
});
