// End to end (issue 19): the daemon delivers through a test upstream that checks XOAUTH2
// app-only tokens the way Exchange Online does (audience, SMTP.SendAsApp, the mailbox
// permission, MAIL FROM = the mailbox), with tokens from a local endpoint that checks the
// client-credentials request as Microsoft Entra does (test/peers/entra-token.ts).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, removeDir, startDaemon, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { appCertificate } from '../peers/app-cert.js';
import { startOAuthServer, type OAuthServer, type OAuthServerOptions } from '../peers/oauth-server.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const RELAY = 'relay@contoso.test';
const SECRET = 'Qx8~app-secret-value';

interface Setup { oauth: OAuthServer; up: Upstream; dir: string; d: RunningDaemon }

/** Token endpoint + upstream + daemon; `relay` is the rest of the [relay] section (credential, login_as, reuse). */
async function setup(relay: string, server: Partial<OAuthServerOptions> = {}): Promise<Setup> {
  const cert = appCertificate();
  const oauth = await startOAuthServer({ clientId: 'app-1', expiresIn: 3600, app: { secret: SECRET, certificate: cert.cert }, mailboxes: [RELAY], ...server });
  cleanups.push(() => oauth.close());
  const up = await startUpstream({ tls: 'starttls', auth: { users: {}, required: true, methods: ['XOAUTH2'] }, oauth: { isValid: oauth.isValid, style: 'microsoft', sendAs: true } });
  cleanups.push(() => up.close());
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  fs.writeFileSync(path.join(dir, 'app.secret'), `${SECRET}\n`, { mode: 0o600 });
  const toml = `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\nusername = "${RELAY}"\n` +
    `auth = "oauth2"\ngrant = "client_credentials"\ntoken_url = "${oauth.tokenUrl}"\nclient_id = "app-1"\nscope = "https://outlook.office365.com/.default"\n${relay}\n` +
    '[queue]\nretry_min = "1h"\nretry_max = "2h"\n';
  const d = await startDaemon({ dir, toml });
  cleanups.push(async () => { await d.stop(); });
  return { oauth, up, dir, d };
}

describe('app-only OAuth2 (client credentials) to Microsoft 365', () => {
  it('delivers with a client secret: XOAUTH2 as the route\'s username, one token request', async () => {
    const s = await setup('client_secret_file = "app.secret"');
    await submit(s.d.ports[0]!, RELAY, ['bob@example.net']);
    const [m] = await s.up.waitForMessages(1);
    assert.equal(m!.authMethod, 'XOAUTH2');
    assert.equal(m!.authUser, RELAY);
    assert.deepEqual(s.oauth.appGrants.map((g) => [g.ok, g.form['grant_type'], g.form['client_secret']]), [[true, 'client_credentials', SECRET]]);
    await s.d.waitForLog(/status=sent/);
  });

  it('delivers with a certificate: a signed assertion the endpoint verified, no secret sent', async () => {
    const cert = appCertificate();
    const s = await setup(`assertion_certificate = "${cert.certFile}"\nassertion_key = "${cert.keyFile}"`);
    await submit(s.d.ports[0]!, RELAY, ['bob@example.net']);
    assert.equal((await s.up.waitForMessages(1))[0]!.authUser, RELAY);
    const g = s.oauth.appGrants;
    assert.equal(g.length, 1);
    assert.equal(g[0]!.ok, true);
    assert.equal(g[0]!.form['client_assertion_type'], 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(g[0]!.form['client_secret'], undefined);
  });

  it('reuses the token for every login until it nears expiry: three connections, one token request', async () => {
    const s = await setup('client_secret_file = "app.secret"\nreuse_messages = 1');
    for (const [i, to] of ['a@example.net', 'b@example.net', 'c@example.net'].entries()) {
      await submit(s.d.ports[0]!, RELAY, [to]);
      await s.up.waitForMessages(i + 1);
    }
    assert.equal(s.up.sessions.filter((x) => x.authUser === RELAY).length, 3, 'a new connection and login per message');
    assert.equal(s.oauth.appGrants.length, 1);
  });

  it('login_as = "sender": two mailboxes through one app and one token, never on each other\'s connection', async () => {
    const s = await setup('client_secret_file = "app.secret"\nlogin_as = "sender"', { mailboxes: [RELAY, 'alice@contoso.test', 'bob@contoso.test'] });
    for (const [i, from] of ['alice@contoso.test', 'bob@contoso.test', 'alice@contoso.test', 'bob@contoso.test'].entries()) {
      await submit(s.d.ports[0]!, from, [`rcpt${i}@example.net`]);
      await s.up.waitForMessages(i + 1);
    }
    assert.deepEqual(s.up.messages.map((m) => [m.from, m.authUser]), [
      ['alice@contoso.test', 'alice@contoso.test'], ['bob@contoso.test', 'bob@contoso.test'], ['alice@contoso.test', 'alice@contoso.test'], ['bob@contoso.test', 'bob@contoso.test']]);
    for (const session of s.up.sessions) assert.ok(session.authAttempts.length <= 1, 'one login per connection');
    assert.equal(s.up.sessions.filter((x) => x.authUser).length, 2, 'the cached connection of each mailbox was reused for its second message');
    assert.equal(s.oauth.appGrants.length, 1, 'one app token for both mailboxes');
  });

  it('login_as = "username" and another sender: Microsoft\'s 554 5.2.252 SendAsDenied bounces with what to change', async () => {
    const s = await setup('client_secret_file = "app.secret"');
    const id = await submit(s.d.ports[0]!, 'alerts@contoso.test', ['bob@example.net']);
    const line = await s.d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=bounced \\(.*\\)`));
    assert.match(line, /554 5\.2\.252 SendAsDenied; relay@contoso\.test not allowed to send as alerts@contoso\.test.*; the mailbox relay@contoso\.test may not send as <alerts@contoso\.test> .*; set login_as = "sender"/);
  });

  it('a refused token request defers the mail with Microsoft\'s code in plain words and the fix', async () => {
    const s = await setup('client_secret_file = "app.secret"', { app: { secret: 'a-newer-secret' } });
    const id = await submit(s.d.ports[0]!, RELAY, ['bob@example.net']);
    const line = await s.d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
    assert.match(line, new RegExp(`status=deferred \\(OAuth2 app-only token request for client_id app-1 at ${s.oauth.tokenUrl} failed: the client secret is wrong: invalid_client \\(AADSTS7000215: .*\\); put the secret's Value \\(not its Secret ID\\) in client_secret_file`));
    assert.deepEqual(s.up.sessions.flatMap((x) => x.authAttempts), [], 'no AUTH without a token');
    assert.equal(s.up.messages.length, 0);
    const show = s.d.cli(['queue', 'show', id]);
    assert.match(show.stdout, /AADSTS7000215/);
  });

  it('a token Exchange does not take (no mailbox permission) defers with the service-principal fix', async () => {
    const s = await setup('client_secret_file = "app.secret"', { mailboxes: [] });
    const id = await submit(s.d.ports[0]!, RELAY, ['bob@example.net']);
    const line = await s.d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
    assert.match(line, /SASL XOAUTH2 authentication failed; server .* said: 535 5\.7\.3 Authentication unsuccessful \(tried username "relay@contoso\.test" with a freshly issued app-only OAuth2 access token from \S+\); Exchange Online took no token for relay@contoso\.test.*New-ServicePrincipal -AppId app-1 .*Add-MailboxPermission -Identity relay@contoso\.test/);
  });

  it('a password login refused with 550 5.7.30 defers, saying to switch to app-only OAuth2', async () => {
    const up = await startUpstream({ tls: 'starttls', auth: { users: { [RELAY]: 'pw' }, required: true }, faults: [{ stage: 'auth', action: 'reply', reply: '550 5.7.30 Basic authentication is not supported for Client Submission.' }] });
    cleanups.push(() => up.close());
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    fs.writeFileSync(path.join(dir, 'relay.secret'), 'pw\n', { mode: 0o600 });
    const d = await startDaemon({ dir, toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\nusername = "${RELAY}"\npassword_file = "relay.secret"\n` });
    cleanups.push(async () => { await d.stop(); });
    const id = await submit(d.ports[0]!, RELAY, ['bob@example.net']);
    const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
    assert.match(line, /said: 550 5\.7\.30 Basic authentication is not supported for Client Submission\.; the server rejected username "relay@contoso\.test" with the password from password_file \S+ \(AUTH PLAIN\); Microsoft 365 no longer takes a password for SMTP .*; switch to OAuth2 app-only tokens: auth = "oauth2", provider = "microsoft", grant = "client_credentials"/);
  });

  it('smarthost oauth login on such a route says no sign-in is needed, and why', async () => {
    const s = await setup('client_secret_file = "app.secret"');
    const r = s.d.cli(['oauth', 'login', 'relay']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[relay\] uses grant = "client_credentials": nothing to sign in\. App-only tokens need no person and no refresh token; smarthost asks for one with client_secret_file \S+app\.secret when it delivers/);
  });
});

describe('the assertion certificate and key are checked at load', () => {
  const pairConfig = (certFile: string, keyFile: string) => {
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const file = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "smtp://127.0.0.1:9"\nusername = "${RELAY}"\nauth = "oauth2"\nprovider = "microsoft"\n` +
      `tenant = "contoso.test"\nclient_id = "app-1"\ngrant = "client_credentials"\nassertion_certificate = "${certFile}"\nassertion_key = "${keyFile}"\n`);
    return { dir, file };
  };

  it('check: a key readable by others is a warning; a key that is not the certificate\'s is an error', () => {
    const cert = appCertificate();
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const loose = path.join(dir, 'app.key');
    fs.copyFileSync(cert.keyFile, loose);
    fs.chmodSync(loose, 0o644);
    const ok = spawnSync(process.execPath, [CLI, 'check', '-c', pairConfig(cert.certFile, loose).file], { encoding: 'utf8' });
    assert.match(ok.stdout + ok.stderr, /assertion_key \S+app\.key is readable by other users \(mode 644\); it is the private key the app signs in with[\s\S]*chmod 600 \S+app\.key/);
    const bad = spawnSync(process.execPath, [CLI, 'check', '-c', pairConfig(cert.certFile, appCertificate('other').keyFile).file], { encoding: 'utf8' });
    assert.equal(bad.status, 1, bad.stdout);
    assert.match(bad.stdout + bad.stderr, /assertion_key \S+other\.key is not the key of assertion_certificate \S+app\.crt[\s\S]*point assertion_key at the private key that belongs to the certificate/);
  });

  it('check: an app-only client_secret_file readable by others is a warning; the summary says app-only', () => {
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    fs.writeFileSync(path.join(dir, 'app.secret'), `${SECRET}\n`, { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'app.secret'), 0o644);
    const file = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "smtp://127.0.0.1:9"\nusername = "${RELAY}"\nauth = "oauth2"\nprovider = "microsoft"\n` +
      'tenant = "contoso.test"\nclient_id = "app-1"\ngrant = "client_credentials"\nclient_secret_file = "app.secret"\nlogin_as = "sender"\n');
    const r = spawnSync(process.execPath, [CLI, 'check', '-c', file], { encoding: 'utf8' });
    assert.match(r.stdout + r.stderr, /client_secret_file \S+app\.secret is readable by other users \(mode 644\)/);
    assert.match(r.stdout, /auth=oauth2 \(microsoft, app-only, login_as=sender\)/);
  });

  it('a reload to a pair that cannot sign is refused; the running configuration keeps delivering', async () => {
    const s = await setup('client_secret_file = "app.secret"');
    const cert = appCertificate();
    const text = fs.readFileSync(s.d.configFile, 'utf8');
    fs.writeFileSync(s.d.configFile, text.replace('client_secret_file = "app.secret"', `assertion_certificate = "${cert.certFile}"\nassertion_key = "${appCertificate('other').keyFile}"`));
    s.d.child.kill('SIGHUP');
    await s.d.waitForLog(/SIGHUP: the new configuration has 1 problem; keeping the running one/);
    assert.match(await s.d.waitForLog(/.*assertion_key .* is not the key of assertion_certificate.*/), /\[relay\]: assertion_key \S+other\.key is not the key of assertion_certificate \S+app\.crt/);
    await submit(s.d.ports[0]!, RELAY, ['bob@example.net']);
    assert.equal((await s.up.waitForMessages(1))[0]!.authUser, RELAY);
    assert.equal(s.oauth.appGrants[0]!.form['client_secret'], SECRET, 'still the secret of the running configuration');
  });

  it('start refuses a pair that cannot sign, saying which file and the fix', () => {
    const cert = appCertificate();
    const { dir, file } = pairConfig(cert.certFile, appCertificate('other').keyFile);
    const r = spawnSync(process.execPath, [CLI, 'start', '-c', file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0);
    assert.equal(r.signal, null, 'it stopped by itself');
    assert.match(r.stdout + r.stderr, /\[relay\]: assertion_key \S+other\.key is not the key of assertion_certificate \S+app\.crt; point assertion_key at the private key/);
  });
});
