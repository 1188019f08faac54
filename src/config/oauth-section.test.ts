// auth = "oauth2" with grant = "client_credentials" (issue 19): the keys, their defaults, and
// what a user sees for each bad value (file, line, message, fix).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.js';
import type { Config, Problem } from './types.js';

const FILE = '/etc/smarthost/smarthost.toml';
const M365 = '[relay]\nurl = "smtp://smtp.office365.com:587"\nusername = "relay@contoso.com"\nauth = "oauth2"\nprovider = "microsoft"\nclient_id = "app-1"\n';
const app = (extra: string) => `${M365}grant = "client_credentials"\n${extra}`;

function valid(text: string): Config {
  const { config, problems } = parseConfig(text, FILE);
  assert.deepEqual(problems, [], 'expected a valid config');
  return config!;
}

function problemAt(text: string, at: string): Problem {
  const { config, problems } = parseConfig(text, FILE);
  assert.equal(config, undefined);
  const found = problems.filter((p) => p.path === at);
  assert.equal(found.length, 1, `one problem at ${at} in ${JSON.stringify(problems, null, 2)}`);
  assert.equal(found[0]!.file, FILE);
  return found[0]!;
}

describe('grant = "client_credentials"', () => {
  it('with a secret: the tenant\'s token URL, scope https://outlook.office365.com/.default, login_as "username", no refresh token', () => {
    const o = valid(app('tenant = "contoso.onmicrosoft.com"\nclient_secret_file = "app.secret"\n')).relay!.oauth!;
    assert.deepEqual({ ...o, credential: { ...(o.grant === 'client_credentials' ? o.credential : {}) } }, {
      route: 'relay', grant: 'client_credentials', provider: 'microsoft', clientId: 'app-1',
      tokenUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
      scope: 'https://outlook.office365.com/.default', loginAs: 'username', credential: { kind: 'secret', file: '/etc/smarthost/app.secret' },
    });
  });

  it('with a certificate, login_as = "sender", and a scope of one\'s own', () => {
    const o = valid(app('tenant = "0b6e0c9c-1f1e-4a8e-9c4e-3d2d1e0f0a11"\nassertion_certificate = "app.crt"\nassertion_key = "/keys/app.key"\nlogin_as = "sender"\nscope = "https://outlook.office.com/.default"\n')).relay!.oauth!;
    assert.ok(o.grant === 'client_credentials');
    assert.deepEqual(o.credential, { kind: 'certificate', certificate: '/etc/smarthost/app.crt', key: '/keys/app.key' });
    assert.equal(o.loginAs, 'sender');
    assert.equal(o.scope, 'https://outlook.office.com/.default');
  });

  it('the default grant stays the delegated one', () => {
    const o = valid(`${M365}refresh_token_file = "r.oauth"\n`).relay!.oauth!;
    assert.equal(o.grant, 'refresh_token');
  });

  it('refuses an unknown grant with did-you-mean, and an unknown login_as', () => {
    const p = problemAt(`${M365}grant = "client_credential"\nrefresh_token_file = "r"\n`, 'relay.grant');
    assert.equal(p.line, 7);
    assert.match(p.fix, /client_credentials/);
    assert.match(problemAt(app('tenant = "contoso.com"\nclient_secret_file = "s"\nlogin_as = "from"\n'), 'relay.login_as').fix, /"username"|"sender"/);
  });

  it('wants the tenant: app-only tokens never come from "common"', () => {
    const p = problemAt(app('client_secret_file = "s"\n'), 'relay.tenant');
    assert.match(p.message, /relay has no tenant: app-only tokens come from your own tenant, not from "common"/);
    assert.match(p.fix, /tenant = "contoso\.onmicrosoft\.com"/);
    assert.equal(problemAt(app('tenant = "organizations"\nclient_secret_file = "s"\n'), 'relay.tenant').line, 8);
  });

  it('wants exactly one credential: a secret, or a certificate with its key', () => {
    const t = 'tenant = "contoso.com"\n';
    assert.match(problemAt(app(t), 'relay.grant').fix, /client_secret_file = .* or assertion_certificate = .* with assertion_key = /);
    assert.match(problemAt(app(`${t}client_secret_file = "s"\nassertion_certificate = "c"\nassertion_key = "k"\n`), 'relay.client_secret_file').message, /both client_secret_file and a certificate/);
    assert.match(problemAt(app(`${t}assertion_certificate = "c"\n`), 'relay.assertion_key').fix, /add assertion_key = /);
    assert.match(problemAt(app(`${t}assertion_key = "k"\n`), 'relay.assertion_certificate').fix, /add assertion_certificate = /);
  });

  it('refuses the delegated keys with it, and its keys without it', () => {
    const t = 'tenant = "contoso.com"\nclient_secret_file = "s"\n';
    assert.match(problemAt(app(`${t}refresh_token_file = "r"\n`), 'relay.refresh_token_file').message, /not used with grant = "client_credentials": app-only tokens need no sign-in and no refresh token/);
    problemAt(app(`${t}device_url = "https://login.example.com/device"\n`), 'relay.device_url');
    assert.match(problemAt(`${M365}refresh_token_file = "r"\nlogin_as = "sender"\n`, 'relay.login_as').fix, /add grant = "client_credentials", or remove login_as/);
    problemAt(`${M365}refresh_token_file = "r"\nassertion_certificate = "c"\n`, 'relay.assertion_certificate');
    assert.match(problemAt('[relay]\nurl = "smtp://a.example:587"\nusername = "u"\npassword_file = "p"\nassertion_key = "k"\n', 'relay.assertion_key').message, /only applies with auth = "oauth2"/);
  });

  it('refuses it for Google, and an http:// token_url off loopback (the secret and assertion go there)', () => {
    assert.match(problemAt('[relay]\nurl = "smtps://smtp.gmail.com:465"\nusername = "a@gmail.com"\nauth = "oauth2"\nprovider = "google"\nclient_id = "c"\ngrant = "client_credentials"\nclient_secret_file = "s"\n', 'relay.grant').message, /does not exist for Gmail/);
    problemAt(`[relay]\nurl = "smtp://a.example:587"\nusername = "u@a.example"\nauth = "oauth2"\nclient_id = "c"\ngrant = "client_credentials"\nclient_secret_file = "s"\ntoken_url = "http://login.example.com/token"\n`, 'relay.token_url');
  });

  it('is taken on a [[route]] too, named by the route', () => {
    const c = valid('[[route]]\nname = "m365"\nsenders = ["@contoso.com"]\nurl = "smtp://smtp.office365.com:587"\nusername = "relay@contoso.com"\nauth = "oauth2"\nprovider = "microsoft"\n' +
      'tenant = "contoso.com"\nclient_id = "app-1"\ngrant = "client_credentials"\nclient_secret_file = "s"\nlogin_as = "sender"\n');
    assert.equal(c.routes[0]!.oauth!.route, 'm365');
  });
});
