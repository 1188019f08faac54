// The auth = "oauth2" keys of [relay] and [[route]]: the delegated sign-in (grant =
// "refresh_token", the default: a person signs in once, smarthost keeps the refresh token)
// and app-only tokens (grant = "client_credentials": a secret or a certificate, no person).
// Pure like validate.ts: the files named here are read by `check` and at start.
import type { Section } from './reader.js';
import type { AppCredential, AppOAuthConfig, OAuthConfig } from './types.js';

/** auth = "oauth2" keys; `auth` itself is first. */
export const OAUTH_KEYS = ['auth', 'grant', 'provider', 'tenant', 'client_id', 'client_secret_file', 'refresh_token_file', 'token_url', 'device_url', 'scope',
  'assertion_certificate', 'assertion_key', 'login_as'];

/** What each provider documents for SMTP sign-in; Microsoft's URLs carry the tenant. */
const OAUTH_PROVIDERS = {
  google: { tokenUrl: 'https://oauth2.googleapis.com/token', deviceUrl: 'https://oauth2.googleapis.com/device/code', scope: 'https://mail.google.com/', appScope: undefined },
  microsoft: {
    tokenUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token',
    deviceUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode',
    scope: 'https://outlook.office.com/SMTP.Send offline_access',
    // app-only tokens name the resource with /.default (the app's granted permissions, SMTP.SendAsApp)
    appScope: 'https://outlook.office365.com/.default',
  },
} as const;

/** Keys that belong to one grant only. */
const DELEGATED_ONLY = ['refresh_token_file', 'device_url'] as const;
const APP_ONLY = ['assertion_certificate', 'assertion_key', 'login_as'] as const;

/**
 * An upstream's OAuth2 sign-in (auth = "oauth2"), or undefined for password auth. A value that is
 * incomplete always comes with a problem, so it never reaches a Config.
 */
export function readOAuth(s: Section, abs: (p: string) => string): OAuthConfig | undefined {
  const auth = s.oneOf('auth', ['password', 'oauth2'] as const, 'password');
  if (auth === 'password') {
    for (const k of OAUTH_KEYS.slice(1)) if (s.has(k)) s.problem(k, `${s.at(k)} only applies with auth = "oauth2"`, `add auth = "oauth2", or remove ${k}`);
    return undefined;
  }
  const grant = s.oneOf('grant', ['refresh_token', 'client_credentials'] as const, 'refresh_token');
  const route = s.path === 'relay' ? 'relay' : typeof s.table['name'] === 'string' ? s.table['name'] : `route${Number(/\d+/.exec(s.path)?.[0] ?? 0) + 1}`;
  const providerRaw = s.raw('provider');
  const provider = providerRaw === 'google' || providerRaw === 'microsoft' ? providerRaw : undefined;
  if (providerRaw !== undefined && !provider) {
    s.problem('provider', `unknown provider ${JSON.stringify(providerRaw)} in ${s.at('provider')}`, 'write provider = "google" or "microsoft", or leave it out and set token_url (and device_url)');
  }
  const tenant = readTenant(s, provider, grant);
  const preset = provider ? OAUTH_PROVIDERS[provider] : undefined;
  const tokenUrl = endpoint(s, 'token_url', preset?.tokenUrl.replace('{tenant}', tenant));
  if (tokenUrl === undefined) s.problem('auth', `${s.path} has auth = "oauth2" but no token endpoint`, 'add provider = "google" or "microsoft", or token_url = "https://…/token"');
  const clientId = s.string('client_id');
  if (clientId === undefined) s.problem('client_id', `${s.path} has auth = "oauth2" but no client_id`, 'add client_id = "…" from the app registration at your provider');
  if (!s.has('username')) s.problem('username', `${s.path} has auth = "oauth2" but no username (the mailbox to log in as)`, 'add username = "alice@example.com"');
  for (const k of ['password_file', 'password_env']) {
    if (s.has(k)) s.problem(k, `${s.path} has auth = "oauth2", which logs in with a token, not a password`, `remove ${k}, or set auth = "password"`);
  }
  const mechs = s.raw('mechanisms');
  if (Array.isArray(mechs) && mechs.some((m) => typeof m !== 'string' || !['XOAUTH2', 'OAUTHBEARER'].includes(m.toUpperCase()))) {
    s.problem('mechanisms', `${s.at('mechanisms')} with auth = "oauth2" may only list XOAUTH2 and OAUTHBEARER`, 'write mechanisms = ["XOAUTH2"] (the default), or ["OAUTHBEARER"]');
  }
  const common = { route, tokenUrl: tokenUrl ?? '', clientId: clientId ?? '', ...(provider ? { provider } as const : {}) };
  if (grant === 'client_credentials') {
    if (provider === 'google') s.problem('grant', `${s.at('grant')} = "client_credentials" does not exist for Gmail: Google signs service accounts in differently`, 'remove grant (sign the mailbox in with `smarthost oauth login`)');
    for (const k of DELEGATED_ONLY) {
      if (s.has(k)) s.problem(k, `${s.at(k)} is not used with grant = "client_credentials": app-only tokens need no sign-in and no refresh token`, `remove ${k}`);
    }
    const scope = s.string('scope') ?? preset?.appScope;
    const credential = readAppCredential(s, abs);
    const loginAs = s.oneOf('login_as', ['username', 'sender'] as const, 'username');
    const app: AppOAuthConfig = { ...common, grant, credential: Object.freeze(credential), loginAs, ...(scope !== undefined ? { scope } : {}) };
    return Object.freeze(app);
  }
  for (const k of APP_ONLY) {
    if (s.has(k)) s.problem(k, `${s.at(k)} only applies with grant = "client_credentials" (app-only tokens)`, `add grant = "client_credentials", or remove ${k}`);
  }
  const deviceUrl = endpoint(s, 'device_url', preset?.deviceUrl.replace('{tenant}', tenant));
  const secret = s.string('client_secret_file');
  const refresh = s.string('refresh_token_file');
  if (refresh === undefined) s.problem('refresh_token_file', `${s.path} has auth = "oauth2" but no refresh_token_file`, `add refresh_token_file = "/etc/smarthost/${route}.oauth", then run "smarthost oauth login ${route}" to fill it`);
  const scope = s.string('scope') ?? preset?.scope;
  return Object.freeze({
    ...common, grant, refreshTokenFile: abs(refresh ?? ''),
    ...(deviceUrl !== undefined ? { deviceUrl } : {}),
    ...(secret !== undefined ? { clientSecretFile: abs(secret) } : {}), ...(scope !== undefined ? { scope } : {}),
  });
}

/** Microsoft's tenant; app-only tokens come from one tenant, never from "common". */
function readTenant(s: Section, provider: string | undefined, grant: string): string {
  const tenant = s.string('tenant', 'common');
  if (s.has('tenant') && provider !== 'microsoft') s.problem('tenant', `${s.at('tenant')} only applies with provider = "microsoft"`, 'remove tenant');
  if (!/^[A-Za-z0-9.-]+$/.test(tenant)) s.problem('tenant', `${s.at('tenant')} = "${tenant}" is not a tenant id or domain`, 'write tenant = "contoso.onmicrosoft.com" (or the tenant GUID, or "common")');
  else if (provider === 'microsoft' && grant === 'client_credentials' && ['common', 'organizations', 'consumers'].includes(tenant.toLowerCase())) {
    s.problem('tenant', `${s.has('tenant') ? `${s.at('tenant')} = "${tenant}"` : `${s.path} has no tenant`}: app-only tokens come from your own tenant, not from "${tenant}"`,
      'write tenant = "contoso.onmicrosoft.com" (or the Directory (tenant) ID from the app registration\'s overview)');
  }
  return tenant;
}

/** The refresh token, client secret and assertion travel to these URLs: TLS, except to this machine (tests, local proxies). */
function endpoint(s: Section, key: 'token_url' | 'device_url', fallback: string | undefined): string | undefined {
  const v = s.string(key) ?? fallback;
  let u: URL | undefined;
  try { u = v === undefined ? undefined : new URL(v); } catch { /* reported below */ }
  const loopback = u !== undefined && (u.hostname === 'localhost' || /^127\./.test(u.hostname) || u.hostname === '[::1]');
  if (v !== undefined && (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && loopback)))) {
    s.problem(key, `${s.at(key)} = "${v}" is not an https:// URL (the refresh token and client secret are sent to it)`, `write ${key} = "https://${u?.host || 'login.example.com'}${u?.pathname ?? '/token'}"`);
  }
  return v;
}

/** client_secret_file, or assertion_certificate with assertion_key: exactly one of the two. */
function readAppCredential(s: Section, abs: (p: string) => string): AppCredential {
  const secret = s.string('client_secret_file');
  const certificate = s.string('assertion_certificate');
  const key = s.string('assertion_key');
  const both = 'client_secret_file = "/etc/smarthost/app.secret", or assertion_certificate = "/etc/smarthost/app.crt" with assertion_key = "/etc/smarthost/app.key"';
  if (secret !== undefined && (certificate !== undefined || key !== undefined)) {
    s.problem('client_secret_file', `${s.path} has both client_secret_file and a certificate (assertion_certificate/assertion_key): the app proves itself with one of them`, 'keep one: the certificate is the safer choice (nothing secret is sent)');
  } else if (secret === undefined && certificate === undefined && key === undefined) {
    s.problem('grant', `${s.path} has grant = "client_credentials" but no app credential`, `add ${both}`);
  } else if (secret === undefined && (certificate === undefined) !== (key === undefined)) {
    const missing = certificate === undefined ? 'assertion_certificate' : 'assertion_key';
    s.problem(missing, `${s.path} needs both assertion_certificate and assertion_key (the certificate uploaded to the app registration, and its private key)`, `add ${missing} = "/etc/smarthost/app.${certificate === undefined ? 'crt' : 'key'}"`);
  }
  if (secret !== undefined) return { kind: 'secret', file: abs(secret) };
  return { kind: 'certificate', certificate: abs(certificate ?? ''), key: abs(key ?? '') };
}
