// AppTokenSource against the local token endpoint, which checks client-credentials
// requests as Microsoft Entra does (test/peers/entra-token.ts).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AppCredential, AppOAuthConfig } from '../config/types.js';
import { appCertificate } from '../../test/peers/app-cert.js';
import { startOAuthServer, type OAuthServer } from '../../test/peers/oauth-server.js';
import { appRefreshMarginMs, AppTokenSource } from './app-token-source.js';
import { OAuthError } from './token-source.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const SCOPE = 'https://outlook.office365.com/.default';

async function setup(opts: { expiresIn?: number; credential?: 'secret' | 'certificate'; secretOnDisk?: string; scope?: string } = {}) {
  const app = appCertificate();
  const oauth: OAuthServer = await startOAuthServer({ clientId: 'app-1', expiresIn: opts.expiresIn ?? 3600, app: { secret: 's3cret', certificate: app.cert } });
  cleanups.push(() => oauth.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-app-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const secretFile = path.join(dir, 'app.secret');
  fs.writeFileSync(secretFile, `${opts.secretOnDisk ?? 's3cret'}\n`, { mode: 0o600 });
  const credential: AppCredential = opts.credential === 'certificate' ? { kind: 'certificate', certificate: app.certFile, key: app.keyFile } : { kind: 'secret', file: secretFile };
  const config: AppOAuthConfig = { route: 'relay', grant: 'client_credentials', tokenUrl: oauth.tokenUrl, clientId: 'app-1', scope: opts.scope ?? SCOPE, credential, loginAs: 'username' };
  let clock = Date.now();
  const source = new AppTokenSource(config, { now: () => clock });
  return { oauth, source, config, advance: (ms: number) => { clock += ms; } };
}

async function refusal(p: Promise<unknown>): Promise<OAuthError> {
  try { await p; } catch (e) { assert.ok(e instanceof OAuthError, String(e)); return e; }
  assert.fail('expected the token request to fail');
}

describe('AppTokenSource (client credentials)', () => {
  it('asks with client_id, grant_type, scope and the secret; the endpoint accepts it', async () => {
    const { oauth, source } = await setup();
    assert.ok(await source.token());
    assert.deepEqual(oauth.appGrants.map((g) => [g.ok, g.form]), [[true, { client_id: 'app-1', grant_type: 'client_credentials', scope: SCOPE, client_secret: 's3cret' }]]);
  });

  it('with a certificate sends a jwt-bearer client assertion the endpoint verifies, and no secret', async () => {
    const { oauth, source } = await setup({ credential: 'certificate' });
    assert.ok(await source.token());
    const form = oauth.appGrants[0]!.form;
    assert.equal(oauth.appGrants[0]!.ok, true);
    assert.equal(form['client_assertion_type'], 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(form['client_secret'], undefined);
    assert.equal(form['client_assertion']!.split('.').length, 3);
  });

  it('keeps the token until 5 minutes before it expires, then asks again; concurrent callers share one request', async () => {
    const { oauth, source, advance } = await setup({ expiresIn: 3600 });
    const tokens = await Promise.all(Array.from({ length: 6 }, () => source.token()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(oauth.appGrants.length, 1);
    advance(3600_000 - 300_000 - 1000);
    assert.equal(await source.token(), tokens[0], '5 min and 1 s left: cached');
    advance(2000);
    assert.notEqual(await source.token(), tokens[0], 'inside the 5 minutes: a new token');
    assert.equal(oauth.appGrants.length, 2);
    assert.equal(appRefreshMarginMs(3600_000), 300_000);
    assert.equal(appRefreshMarginMs(4000), 1000, 'a quarter of a short lifetime');
  });

  it('renew() after a refusal asks once, and hands the newer token to the others', async () => {
    const { oauth, source } = await setup();
    const stale = await source.token();
    const [a, b] = await Promise.all([source.renew(stale), source.renew(stale)]);
    assert.equal(a, b);
    assert.equal(await source.renew(stale), a);
    assert.equal(oauth.appGrants.length, 2);
  });
});

describe('AppTokenSource refusals say what they mean and what to do (deferrals, 4.x.x)', () => {
  it('a wrong secret: AADSTS7000215 in plain words', async () => {
    const { oauth, source } = await setup({ secretOnDisk: 'the-secret-id' });
    const e = await refusal(source.token());
    assert.equal(e.problem, 'refused');
    assert.match(e.message, new RegExp(`^OAuth2 app-only token request for client_id app-1 at ${oauth.tokenUrl} failed: the client secret is wrong: invalid_client \\(AADSTS7000215: Invalid client secret provided\\..*\\); put the secret's Value \\(not its Secret ID\\) in client_secret_file`));
  });

  it('a scope without /.default: AADSTS1002012, with the scope to write', async () => {
    const { source } = await setup({ scope: 'https://outlook.office.com/SMTP.Send' });
    assert.match((await refusal(source.token())).message, /failed: app-only requests need a scope ending in \/\.default: invalid_scope \(AADSTS1002012: .*\); write scope = "https:\/\/outlook\.office365\.com\/\.default"/);
  });

  it('an unknown client_id: AADSTS700016', async () => {
    const { source, config } = await setup();
    const other = new AppTokenSource({ ...config, clientId: 'app-2' });
    assert.ok(source);
    assert.match((await refusal(other.token())).message, /failed: no app with this client_id in this tenant: unauthorized_client \(AADSTS700016: .*\); copy client_id/);
  });

  it('a certificate the app registration does not have: AADSTS700027', async () => {
    const { config } = await setup();
    const other = appCertificate('other');
    const source = new AppTokenSource({ ...config, credential: { kind: 'certificate', certificate: other.certFile, key: other.keyFile } });
    assert.match((await refusal(source.token())).message, /failed: the certificate that signed the assertion is not on the app registration: invalid_client \(AADSTS700027: .*\); upload assertion_certificate/);
  });

  it('HTTP 500 is the provider\'s trouble (4.3.0), a missing secret file 4.3.5, and the next try works', async () => {
    const { oauth, source, config } = await setup();
    oauth.failNext('server_error');
    const e = await refusal(source.token());
    assert.equal(e.problem, 'provider');
    assert.match(e.message, /HTTP 500 server_error from the token endpoint; the provider has trouble; smarthost retries$/);
    assert.ok(await source.token());
    const gone = new AppTokenSource({ ...config, credential: { kind: 'secret', file: '/nonexistent/app.secret' } });
    const e2 = await refusal(gone.token());
    assert.equal(e2.problem, 'unreadable');
    assert.match(e2.message, /cannot read client_secret_file \/nonexistent\/app\.secret \(ENOENT\); fix the file or its permissions$/);
  });
});
