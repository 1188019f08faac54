// End to end (issue 19): `smarthost probe` against a test upstream that answers as Microsoft
// 365 does, and the local Entra-like token endpoint: each of Microsoft's usual refusals gets
// its meaning and named fix from oauth/microsoft-replies.ts, app-only and with a password.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, removeDir, tempDir, writeConfig } from '../helpers/daemon.js';
import { startOAuthServer, type OAuthServer, type OAuthServerOptions } from '../peers/oauth-server.js';
import { startUpstream, type Fault, type Upstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const RELAY = 'relay@contoso.test';
const SECRET = 'app-secret-value';

interface Run { status: number | null; stdout: string }

function probe(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'probe', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.on('close', (status) => resolve({ status, stdout }));
  });
}

/** The ✗ line of a step and the → / fix: lines under it. */
function failure(out: string, step: string): { line: string; diagnosis: string; fix: string } {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`✗ ${step} `));
  assert.ok(i >= 0, `no ✗ ${step} line in:\n${out}`);
  return { line: lines[i]!, diagnosis: lines[i + 1] ?? '', fix: lines[i + 2] ?? '' };
}

interface Setup { oauth: OAuthServer; up: Upstream; file: string }

/** An app-only [relay] (or, with `password`, a password one) against an upstream with these faults. */
async function setup(o: { faults?: Fault[]; server?: Partial<OAuthServerOptions>; scope?: string; password?: boolean } = {}): Promise<Setup> {
  const oauth = await startOAuthServer({ clientId: 'app-1', expiresIn: 3600, app: { secret: SECRET }, mailboxes: [RELAY], ...o.server });
  cleanups.push(() => oauth.close());
  const up = await startUpstream({ tls: 'starttls', auth: { users: { [RELAY]: 'pw' }, methods: o.password ? ['PLAIN', 'LOGIN'] : ['XOAUTH2'] },
    oauth: { isValid: oauth.isValid, style: 'microsoft', sendAs: true }, ...(o.faults ? { faults: o.faults } : {}) });
  cleanups.push(() => up.close());
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  fs.writeFileSync(path.join(dir, 'app.secret'), `${o.password ? 'pw' : SECRET}\n`, { mode: 0o600 });
  const login = o.password ? 'password_file = "app.secret"'
    : `auth = "oauth2"\ngrant = "client_credentials"\ntoken_url = "${oauth.tokenUrl}"\nclient_id = "app-1"\nclient_secret_file = "app.secret"\nscope = "${o.scope ?? 'https://outlook.office365.com/.default'}"`;
  const file = writeConfig(dir, `[relay]\nurl = "${up.url}"\ntls = "verify"\nca_file = "${up.caFile}"\nusername = "${RELAY}"\n${login}\n`);
  return { oauth, up, file };
}

const authFault = (reply: string): Fault[] => [{ stage: 'auth', action: 'reply', reply }];

describe('probe knows Microsoft 365\'s refusals (app-only OAuth2)', () => {
  it('green: an app-only token logs in as the route\'s mailbox', async () => {
    const s = await setup();
    const r = await probe(['-c', s.file]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^✓ auth +logged in as "${RELAY}" with XOAUTH2 \\(freshly issued app-only OAuth2 access token from ${s.oauth.tokenUrl}\\): 235`, 'm'));
    assert.equal(s.oauth.appGrants.length, 1);
  });

  it('535 5.7.139 …disabled for the Tenant: turn SMTP AUTH on for the organization', async () => {
    const s = await setup({ faults: authFault('535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.') });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.diagnosis, /535 5\.7\.139 .*; SMTP AUTH is turned off for the whole Microsoft 365 tenant$/);
    assert.match(f.fix, /fix: Exchange admin center > Settings > Mail flow: .*Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
  });

  it('535 5.7.139 …disabled for the Mailbox: Set-CASMailbox for that mailbox', async () => {
    const s = await setup({ faults: authFault('535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.') });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.fix, /fix: Set-CASMailbox -Identity relay@contoso\.test -SmtpClientAuthenticationDisabled \$false/);
  });

  it('535 5.7.3 with a token the endpoint issued, but no service principal or mailbox permission in Exchange', async () => {
    const s = await setup({ server: { mailboxes: [] } });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.line, /535 5\.7\.3 Authentication unsuccessful \(mailbox "relay@contoso\.test", XOAUTH2\)/);
    assert.match(f.diagnosis, /refused a freshly issued app-only access token .*; Exchange Online took no token for relay@contoso\.test: it does not know the app's service principal/);
    assert.match(f.fix, /New-ServicePrincipal -AppId app-1 -ObjectId OBJECT_ID .*Add-MailboxPermission -Identity relay@contoso\.test -User OBJECT_ID -AccessRights FullAccess/);
  });

  it('535 5.7.3 with a token for another resource: the scope is wrong', async () => {
    const s = await setup({ scope: 'https://graph.microsoft.com/.default' });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.diagnosis, /issued a token for https:\/\/graph\.microsoft\.com, not for Exchange Online: the scope is wrong/);
    assert.match(f.fix, /scope = "https:\/\/outlook\.office365\.com\/\.default"/);
  });

  it('535 5.7.3 with a token without SMTP.SendAsApp: add the permission and grant admin consent', async () => {
    const s = await setup({ server: { app: { secret: SECRET, roles: [] } } });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.diagnosis, /the token carries no SMTP\.SendAsApp permission \(roles: none\)/);
    assert.match(f.fix, /Office 365 Exchange Online > Application permissions > SMTP\.SendAsApp, then "Grant admin consent"/);
  });

  it('a refused token request (wrong secret): the AADSTS code in plain words', async () => {
    const s = await setup({ server: { app: { secret: 'another' } } });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.line, /token request failed/);
    assert.match(f.diagnosis, /no OAuth2 access token: OAuth2 app-only token request for client_id app-1 at \S+ failed: the client secret is wrong: invalid_client \(AADSTS7000215/);
    assert.match(f.fix, /fix: put the secret's Value \(not its Secret ID\) in client_secret_file/);
  });

  it('554 5.2.252 SendAsDenied for the test message from another sender: login_as = "sender" or Send As rights', async () => {
    const s = await setup();
    const f = failure((await probe(['-c', s.file, '--from', 'alerts@contoso.test', '--send-test', 'bob@example.net'])).stdout, 'data');
    assert.match(f.diagnosis, /554 5\.2\.252 SendAsDenied.*; the mailbox relay@contoso\.test may not send as <alerts@contoso\.test>/);
    assert.match(f.fix, /login_as = "sender".*Add-RecipientPermission -Identity alerts@contoso\.test -Trustee relay@contoso\.test -AccessRights SendAs/);
  });

  it('with a password: 550 5.7.30 Basic authentication is not supported says to switch to app-only OAuth2', async () => {
    const s = await setup({ password: true, faults: authFault('550 5.7.30 Basic authentication is not supported for Client Submission.') });
    const f = failure((await probe(['-c', s.file])).stdout, 'auth');
    assert.match(f.diagnosis, /the server rejected username "relay@contoso\.test" with the password from password_file \S+ \(AUTH PLAIN\): 550 5\.7\.30 .*; Microsoft 365 no longer takes a password for SMTP/);
    assert.match(f.fix, /auth = "oauth2", provider = "microsoft", grant = "client_credentials"/);
  });
});
