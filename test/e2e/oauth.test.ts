// End to end (issue 5): the daemon logs in to its upstream with XOAUTH2, using
// access tokens from a local OAuth2 provider (test/peers/oauth-server.ts) that
// expire after 2 s and rotate the refresh token on every refresh. Mail keeps
// flowing across expiry, a refused token is refreshed once, a revoked sign-in
// defers with what to do, and `smarthost oauth login` fills refresh_token_file.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, removeDir, startDaemon, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startOAuthServer, type OAuthServer, type OAuthServerOptions } from '../peers/oauth-server.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const USER = 'alice@example.com';

interface Setup { oauth: OAuthServer; up: Upstream; dir: string; tokenFile: string; toml: string }

async function providers(server: OAuthServerOptions = {}, style: 'gmail' | 'microsoft' = 'gmail', accept?: () => boolean): Promise<Setup> {
  const oauth = await startOAuthServer(server);
  cleanups.push(() => oauth.close());
  const up = await startUpstream({ tls: 'starttls', auth: { users: {}, required: true, methods: ['XOAUTH2'] }, oauth: { isValid: accept ?? oauth.isValid, style } });
  cleanups.push(() => up.close());
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const tokenFile = path.join(dir, 'relay.oauth');
  const toml = `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\n` +
    `username = "${USER}"\nauth = "oauth2"\ntoken_url = "${oauth.tokenUrl}"\ndevice_url = "${oauth.deviceUrl}"\nclient_id = "test-client"\n` +
    `refresh_token_file = "${tokenFile}"\n[queue]\nretry_min = "1h"\nretry_max = "2h"\n`;
  return { oauth, up, dir, tokenFile, toml };
}

async function daemon(s: Setup): Promise<RunningDaemon> {
  const d = await startDaemon({ dir: s.dir, toml: s.toml });
  cleanups.push(async () => { await d.stop(); });
  return d;
}

/** A signed-in mailbox: the refresh token `oauth login` would have saved. */
function signedIn(s: Setup): string {
  const t = s.oauth.issueRefreshToken();
  fs.writeFileSync(s.tokenFile, `${t}\n`, { mode: 0o600 });
  return t;
}

const saved = (s: Setup) => fs.readFileSync(s.tokenFile, 'utf8').trim();

describe('XOAUTH2 to the upstream with automatic token refresh', () => {
  it('delivers across token expiry: a refresh happens before the old token runs out, and the rotated refresh token is saved', async () => {
    // expires_in = 0: each token is due for refresh as soon as it is issued (the upstream still takes it
    // for 2 s); when smarthost refreshes against its clock is token-source.test.ts's, with a clock injected
    const s = await providers({ expiresIn: 2, reportedExpiresIn: 0 });
    const first = signedIn(s);
    const d = await daemon(s);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const [m] = await s.up.waitForMessages(1);
    assert.equal(m!.authMethod, 'XOAUTH2');
    assert.equal(m!.authUser, USER);
    const rotated = saved(s);
    assert.notEqual(rotated, first, 'the rotated refresh token is on disk');
    assert.equal(fs.statSync(s.tokenFile).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(s.dir).filter((f) => f.includes('relay.oauth')), ['relay.oauth'], 'no temp file left');

    await s.up.restart();     // and the cached connection is gone: the next delivery logs in again
    await submit(d.ports[0]!, 'app@relay.test', ['carol@example.net']);
    const all = await s.up.waitForMessages(2);
    assert.deepEqual(all.map((x) => x.to[0]), ['bob@example.net', 'carol@example.net']);
    assert.deepEqual(s.oauth.refreshes.map((r) => [r.refreshToken, r.ok]), [[first, true], [rotated, true]], 'the second refresh used the saved token');
    assert.deepEqual(s.up.sessions.flatMap((x) => x.authAttempts.map((a) => a.ok)), [true, true], 'refreshed ahead of expiry, never refused');
    assert.notEqual(saved(s), rotated);
  });

  for (const style of ['gmail', 'microsoft'] as const) {
    it(`an upstream refusing a stale token (${style === 'gmail' ? '334 error challenge' : '535 5.7.3'}) triggers one refresh and the mail goes through`, async () => {
      const s = await providers({ expiresIn: 3600 }, style);
      signedIn(s);
      const d = await daemon(s);
      await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
      await s.up.waitForMessages(1);
      s.oauth.revokeAccessTokens();  // still unexpired in smarthost's cache, but no longer accepted
      await s.up.restart();
      await submit(d.ports[0]!, 'app@relay.test', ['carol@example.net']);
      await s.up.waitForMessages(2);
      assert.equal(s.oauth.refreshes.length, 2, 'one refresh at start, one after the refusal');
      const last = s.up.sessions.filter((x) => x.authAttempts.length).at(-1)!;
      assert.deepEqual(last.authAttempts.map((a) => a.ok), [false, true], 'refused once, then logged in on the same connection');
    });
  }

  it('a token refused again after its refresh defers with the upstream\'s reply, after exactly one refresh', async () => {
    const s = await providers({}, 'gmail', () => false); // e.g. SMTP AUTH disabled for the mailbox
    signedIn(s);
    const d = await daemon(s);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
    assert.match(line, new RegExp('status=deferred \\(SASL XOAUTH2 authentication failed; server 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: 535 .*' +
      `\\(tried username "${USER}" with a freshly refreshed OAuth2 access token from ${s.oauth.tokenUrl}\\); check that the mailbox may use SMTP AUTH`));
    assert.equal(s.oauth.refreshes.length, 2, 'the first token, then one refresh after the refusal');
    assert.deepEqual(s.up.sessions.flatMap((x) => x.authAttempts.map((a) => a.ok)), [false, false]);
  });

  it('a revoked refresh token defers the mail, saying to sign in again (log and queue show)', async () => {
    const s = await providers();
    signedIn(s);
    s.oauth.revokeRefreshTokens();
    const d = await daemon(s);
    const id = await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    const reason = `OAuth2 token refresh for ${USER} at ${s.oauth.tokenUrl} failed: invalid_grant (Token has been expired or revoked.); run "smarthost oauth login relay" to sign in again`;
    const line = await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*\\)`));
    assert.ok(line.endsWith(`status=deferred (${reason})`), line);
    const show = d.cli(['queue', 'show', id]);
    assert.equal(show.status, 0, show.stderr);
    assert.ok(show.stdout.includes(reason), show.stdout);
    assert.deepEqual(s.up.sessions.flatMap((x) => x.authAttempts), [], 'no AUTH without a token');
    assert.equal(s.up.messages.length, 0);
  });

  it('smarthost oauth login runs the device flow and writes refresh_token_file; the daemon then delivers with it', async () => {
    const s = await providers({ pendingPolls: 1, interval: 1 });
    const config = writeConfig(s.dir, s.toml);
    const child = spawn(process.execPath, [CLI, 'oauth', 'login', 'relay', '-c', config], { cwd: s.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, `${out}\n${err}`);
    assert.match(out, new RegExp(`To sign in ${USER}, open ${s.oauth.url}/activate and enter the code WDJB-MJHT`));
    assert.ok(out.includes(`Saved the refresh token for ${USER} to ${s.tokenFile} (mode 0600)`), out);
    assert.equal(s.oauth.polls, 2, 'pending once, then approved');
    assert.match(saved(s), /^rt-/);
    assert.equal(fs.statSync(s.tokenFile).mode & 0o777, 0o600);

    const d = await daemon(s);
    await submit(d.ports[0]!, 'app@relay.test', ['bob@example.net']);
    assert.equal((await s.up.waitForMessages(1))[0]!.authMethod, 'XOAUTH2');
  });
});
