import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DelegatedOAuthConfig } from '../config/types.js';
import { startOAuthServer, type OAuthServer, type OAuthServerOptions } from '../../test/peers/oauth-server.js';
import { OAuthError, TokenSource, refreshMarginMs } from './token-source.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function setup(server: OAuthServerOptions = {}, cfg: Partial<DelegatedOAuthConfig> = {}) {
  const oauth = await startOAuthServer(server);
  cleanups.push(() => oauth.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-oauth-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'relay.oauth');
  fs.writeFileSync(file, `${oauth.issueRefreshToken()}\n`, { mode: 0o600 });
  const config: DelegatedOAuthConfig = { route: 'relay', grant: 'refresh_token', tokenUrl: oauth.tokenUrl, clientId: 'test-client', refreshTokenFile: file, ...cfg };
  let clock = 1_000_000;
  const warnings: string[] = [];
  const source = new TokenSource(config, 'alice@example.com', { now: () => clock, warn: (m) => warnings.push(m) });
  return { oauth, dir, file, source, warnings, advance: (ms: number) => { clock += ms; } };
}

/** A loopback port nobody listens on (fetch refuses well-known "bad ports" such as 9). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function rejection(p: Promise<unknown>): Promise<OAuthError> {
  try { await p; } catch (e) { assert.ok(e instanceof OAuthError, String(e)); return e; }
  assert.fail('expected the token request to fail');
}

describe('refreshMarginMs', () => {
  it('is 60 s for long-lived tokens and a quarter of a short lifetime', () => {
    assert.equal(refreshMarginMs(3_600_000), 60_000);
    assert.equal(refreshMarginMs(2_000), 500);
  });
});

describe('TokenSource', () => {
  it('keeps the token until the margin before expiry, then refreshes', async () => {
    const { oauth, source, advance } = await setup({ expiresIn: 100 }); // margin 25 s
    const first = await source.token();
    advance(74_000);
    assert.equal(await source.token(), first, 'still 26 s left: cached');
    assert.equal(oauth.refreshes.length, 1);
    advance(2_000);
    const second = await source.token();
    assert.notEqual(second, first, 'inside the margin: refreshed');
    assert.equal(oauth.refreshes.length, 2);
  });

  it('shares one refresh among concurrent callers', async () => {
    const { oauth, source } = await setup();
    const tokens = await Promise.all(Array.from({ length: 8 }, () => source.token()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(oauth.refreshes.length, 1);
  });

  it('writes a rotated refresh token back atomically with mode 0600, and uses it next time', async () => {
    const { oauth, source, file, dir, advance } = await setup();
    const before = fs.readFileSync(file, 'utf8').trim();
    await source.token();
    const after1 = fs.readFileSync(file, 'utf8').trim();
    assert.notEqual(after1, before);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir), ['relay.oauth'], 'no temp file left behind');
    advance(10_000);
    await source.token(); // the server revoked `before` when it rotated: only the saved token works
    assert.deepEqual(oauth.refreshes.map((r) => [r.refreshToken, r.ok]), [[before, true], [after1, true]]);
  });

  it('keeps a rotated token in memory and warns when it cannot be saved', async () => {
    const { oauth, source, file, dir, warnings, advance } = await setup();
    fs.mkdirSync(path.join(dir, `.relay.oauth.${process.pid}.tmp`)); // the temp name is taken: the write fails
    const before = fs.readFileSync(file, 'utf8').trim();
    await source.token();
    assert.equal(fs.readFileSync(file, 'utf8').trim(), before);
    assert.match(warnings[0] ?? '', /new refresh token, but it could not be saved to .*relay\.oauth \(EISDIR\); it is used from memory/);
    advance(10_000);
    await source.token();
    assert.equal(oauth.refreshes[1]!.ok, true, 'the in-memory token was used');
  });

  it('renew() refreshes a refused token once, and hands a newer one to the others', async () => {
    const { oauth, source } = await setup({ expiresIn: 3600 });
    const stale = await source.token();
    const [a, b] = await Promise.all([source.renew(stale), source.renew(stale)]);
    assert.equal(a, b);
    assert.notEqual(a, stale);
    assert.equal(await source.renew(stale), a, 'someone already renewed: no new grant');
    assert.equal(oauth.refreshes.length, 2);
  });

  it('sends client_id and client_secret from client_secret_file', async () => {
    const { oauth, dir } = await setup({ clientSecret: 'shh' });
    const secretFile = path.join(dir, 'client.secret');
    fs.writeFileSync(secretFile, 'shh\n');
    const source = new TokenSource({ route: 'relay', grant: 'refresh_token', tokenUrl: oauth.tokenUrl, clientId: 'test-client', refreshTokenFile: path.join(dir, 'relay.oauth'), clientSecretFile: secretFile }, 'alice@example.com');
    await source.token();
    assert.equal(oauth.refreshes[0]!.form['client_secret'], 'shh');
    assert.equal(oauth.refreshes[0]!.form['grant_type'], 'refresh_token');
  });
});

describe('TokenSource failures say what to do', () => {
  it('invalid_grant: sign in again with the route name', async () => {
    const { oauth, source } = await setup();
    oauth.revokeRefreshTokens();
    const e = await rejection(source.token());
    assert.equal(e.message, `OAuth2 token refresh for alice@example.com at ${oauth.tokenUrl} failed: invalid_grant (Token has been expired or revoked.); run "smarthost oauth login relay" to sign in again`);
    assert.equal(e.problem, 'refused');
  });

  it('HTTP 500: the provider has trouble, retried later', async () => {
    const { oauth, source } = await setup();
    oauth.failNext('server_error');
    const e = await rejection(source.token());
    assert.match(e.message, /failed: HTTP 500 server_error from the token endpoint; the provider has trouble; smarthost retries$/);
    assert.equal(e.problem, 'provider');
    assert.ok(await source.token(), 'the next try works');
  });

  it('invalid_client: check client_id and the secret', async () => {
    const { oauth, source } = await setup();
    oauth.failNext('invalid_client');
    assert.match((await rejection(source.token())).message, /failed: invalid_client \(Unauthorized\); check client_id and client_secret_file/);
  });

  it('network error: cannot reach the endpoint', async () => {
    const { file } = await setup();
    const closed = await closedPort();
    const source = new TokenSource({ route: 'corp', grant: 'refresh_token', tokenUrl: `http://127.0.0.1:${closed}/token`, clientId: 'c', refreshTokenFile: file }, 'bob@example.com');
    const e = await rejection(source.token());
    assert.match(e.message, /^OAuth2 token refresh for bob@example\.com at http:\S+ failed: cannot reach the token endpoint \(ECONNREFUSED\); smarthost retries/);
    assert.equal(e.problem, 'network');
  });

  it('no refresh token file yet: run oauth login', async () => {
    const { oauth, dir } = await setup();
    const source = new TokenSource({ route: 'corp', grant: 'refresh_token', tokenUrl: oauth.tokenUrl, clientId: 'test-client', refreshTokenFile: path.join(dir, 'missing') }, 'bob@example.com');
    assert.match((await rejection(source.token())).message,
      /^OAuth2 for bob@example\.com at http:\S+: no refresh token \(cannot read refresh_token_file \S+missing: ENOENT\); run "smarthost oauth login corp" to sign in$/);
    assert.equal(oauth.refreshes.length, 0);
  });
});
