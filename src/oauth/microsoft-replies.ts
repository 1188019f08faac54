// Microsoft 365's usual refusals, in plain words, with the fix: SMTP replies from Exchange
// Online (AUTH and submission) and AADSTS errors from the Entra token endpoint. One table,
// read by `probe` (probe/diagnose.ts) and by the delivery log line (smtp/session.ts), so
// both say the same. Pure: no I/O.
import type { OAuthConfig } from '../config/types.js';

export interface Explained {
  /** What happened, in words an admin recognises. */
  readonly meaning: string;
  /** What to change, with the setting or PowerShell command. */
  readonly fix: string;
}

/** What was tried when Microsoft answered. */
export interface ReplyContext {
  /** How smarthost logged in: app-only token, delegated token, password. */
  readonly login: 'app' | 'delegated' | 'password';
  readonly mailbox: string;
  /** The [relay] or route name, for `smarthost oauth login NAME`. */
  readonly route: string;
  readonly clientId?: string;
  /** The MAIL FROM address, for SendAsDenied. */
  readonly sender?: string;
  /** login_as of an app-only route. */
  readonly loginAs?: 'username' | 'sender';
  /** The access token's readable claims (Microsoft's tokens for Exchange are JWTs). */
  readonly claims?: TokenClaims;
}

export interface TokenClaims { readonly aud?: string; readonly roles?: readonly string[] }

/** How an OAuth2 login with this config as `mailbox` is described to the table. */
export function oauthContext(o: OAuthConfig, mailbox: string): ReplyContext {
  return o.grant === 'client_credentials'
    ? { login: 'app', mailbox, route: o.route, clientId: o.clientId, loginAs: o.loginAs }
    : { login: 'delegated', mailbox, route: o.route, clientId: o.clientId };
}

const README = 'README "Microsoft 365 without Basic authentication (app-only)"';
const TENANT_ON = 'Exchange admin center > Settings > Mail flow: clear "Turn off SMTP AUTH protocol for your organization" (PowerShell: Set-TransportConfig -SmtpClientAuthenticationDisabled $false)';
const mailboxOn = (m: string) => `Set-CASMailbox -Identity ${m} -SmtpClientAuthenticationDisabled $false (Microsoft 365 admin center > Active users > ${m} > Mail > Manage email apps > Authenticated SMTP)`;
const EXCHANGE_AUDIENCES = ['https://outlook.office365.com', 'https://outlook.office.com', '00000002-0000-0ff1-ce00-000000000000'];

interface SmtpEntry { readonly match: RegExp; readonly explain: (c: ReplyContext) => Explained }

/** First match wins: the specific 5.7.139 texts before the general one. */
const SMTP: readonly SmtpEntry[] = [
  { match: /\b5\.7\.139\b.*disabled for the tenant/i, explain: () => ({
    meaning: 'SMTP AUTH is turned off for the whole Microsoft 365 tenant', fix: TENANT_ON }) },
  { match: /\b5\.7\.139\b.*disabled for the mailbox/i, explain: (c) => ({
    meaning: `SMTP AUTH is turned off for the mailbox ${c.mailbox}`, fix: mailboxOn(c.mailbox) }) },
  { match: /\b5\.7\.139\b.*security defaults/i, explain: () => ({
    meaning: 'the tenant\'s security defaults block SMTP AUTH with a password',
    fix: `log in with OAuth2 instead: auth = "oauth2" with grant = "client_credentials" (see ${README}); or turn security defaults off in Entra ID` }) },
  { match: /\b5\.7\.139\b/, explain: (c) => ({
    meaning: `Microsoft 365 refused SMTP AUTH for ${c.mailbox}: it is turned off for the mailbox or the tenant, or a sign-in policy (security defaults, Conditional Access) blocks it`,
    fix: `${mailboxOn(c.mailbox)}; and ${TENANT_ON}` }) },
  { match: /\b5\.7\.30\b|basic authentication is not supported/i, explain: () => ({
    meaning: 'Microsoft 365 no longer takes a password for SMTP (Basic authentication is off for Client Submission)',
    fix: `switch to OAuth2 app-only tokens: auth = "oauth2", provider = "microsoft", grant = "client_credentials" with the app permission SMTP.SendAsApp (see ${README})` }) },
  { match: /\b5\.2\.252\b|SendAsDenied/i, explain: sendAsDenied },
  // Microsoft's wording too: RFC 3463's X.7.3 means something else on other servers
  { match: /^535[ -]5\.7\.3 Authentication unsuccessful/i, explain: authUnsuccessful },
  { match: /\b5\.7\.57\b.*not authenticated/i, explain: (c) => ({
    meaning: 'Microsoft 365 takes mail on this port only after a login',
    fix: c.login === 'password' ? `set username and auth = "oauth2" (see ${README})` : 'see the AUTH step: the login did not happen' }) },
];

function sendAsDenied(c: ReplyContext): Explained {
  const sender = c.sender ? `<${c.sender}>` : 'the sender address';
  const grant = `or let the mailbox send as it: Add-RecipientPermission -Identity ${c.sender ?? 'SENDER'} -Trustee ${c.mailbox} -AccessRights SendAs`;
  const own = c.login === 'app' && c.loginAs !== 'sender'
    ? `set login_as = "sender" so that each sender logs in as its own mailbox (each needs Add-MailboxPermission for the app), ${grant}`
    : `map the sender to the mailbox with [rewrite] senders, ${grant}`;
  return { meaning: `the mailbox ${c.mailbox} may not send as ${sender} (MAIL FROM must be the mailbox or one it has Send As rights for)`, fix: own };
}

/** 535 5.7.3: the token or password was not taken. For app-only tokens the token's claims tell which set-up step is missing. */
function authUnsuccessful(c: ReplyContext): Explained {
  if (c.login === 'password') {
    return { meaning: `Microsoft 365 refused the password for ${c.mailbox}`, fix: `check the password; Microsoft is turning password logins off, so switch to OAuth2 (see ${README})` };
  }
  if (c.login === 'delegated') {
    return { meaning: `Microsoft 365 refused the access token for ${c.mailbox}`,
      fix: `check that SMTP AUTH is enabled for the mailbox ${c.mailbox} (${mailboxOn(c.mailbox)}) and that scope includes https://outlook.office.com/SMTP.Send, then run "smarthost oauth login ${c.route}"` };
  }
  const aud = c.claims?.aud;
  if (aud !== undefined && !EXCHANGE_AUDIENCES.includes(aud.replace(/\/$/, ''))) {
    return { meaning: `the token endpoint issued a token for ${aud}, not for Exchange Online: the scope is wrong`, fix: 'write scope = "https://outlook.office365.com/.default" (or leave scope out with provider = "microsoft")' };
  }
  if (c.claims && !(c.claims.roles ?? []).includes('SMTP.SendAsApp')) {
    return { meaning: `the token carries no SMTP.SendAsApp permission (roles: ${(c.claims.roles ?? []).join(', ') || 'none'})`,
      fix: 'in the app registration add API permissions > APIs my organization uses > Office 365 Exchange Online > Application permissions > SMTP.SendAsApp, then "Grant admin consent"' };
  }
  const app = c.clientId ?? 'CLIENT_ID';
  return { meaning: `Exchange Online took no token for ${c.mailbox}: it does not know the app's service principal, or the app may not use this mailbox`,
    fix: `in Exchange Online PowerShell: New-ServicePrincipal -AppId ${app} -ObjectId OBJECT_ID (the Object ID of the Enterprise application, not of the app registration), ` +
      `then Add-MailboxPermission -Identity ${c.mailbox} -User OBJECT_ID -AccessRights FullAccess; changes can take 30 minutes to apply` };
}

/** Microsoft's explanation of an SMTP reply, or undefined when it is none of the known refusals. */
export function explainMicrosoftReply(reply: string, c: ReplyContext): Explained | undefined {
  const line = reply.replace(/\s+/g, ' ').trim();
  return SMTP.find((e) => e.match.test(line))?.explain(c);
}

/** The claims of a JWT access token, unverified (only to explain a refusal); undefined for opaque tokens. */
export function tokenClaims(token: string): TokenClaims | undefined {
  const part = token.split('.')[1];
  if (token.split('.').length !== 3 || !part) return undefined;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
    const roles = Array.isArray(v['roles']) ? v['roles'].filter((r): r is string => typeof r === 'string') : undefined;
    return { ...(typeof v['aud'] === 'string' ? { aud: v['aud'] } : {}), ...(roles ? { roles } : {}) };
  } catch { return undefined; }
}

const SCOPE_FIX = 'write scope = "https://outlook.office365.com/.default" (app-only tokens ask for the resource with /.default)';

/** AADSTS codes of the Entra token endpoint for app-only requests. */
const AADSTS: Readonly<Record<number, Explained>> = {
  7000215: { meaning: 'the client secret is wrong', fix: 'put the secret\'s Value (not its Secret ID) in client_secret_file; if it is lost, make a new one under Certificates & secrets' },
  7000222: { meaning: 'the client secret has expired', fix: 'make a new client secret under Certificates & secrets and write its Value to client_secret_file' },
  700016: { meaning: 'no app with this client_id in this tenant', fix: 'copy client_id (Application (client) ID) and tenant (Directory (tenant) ID) from the app registration\'s overview' },
  90002: { meaning: 'the tenant does not exist', fix: 'write tenant = the Directory (tenant) ID or your domain, e.g. "contoso.onmicrosoft.com"' },
  700027: { meaning: 'the certificate that signed the assertion is not on the app registration', fix: 'upload assertion_certificate (the public certificate) under Certificates & secrets > Certificates' },
  700021: { meaning: 'the assertion names another app than client_id', fix: 'check client_id against the app registration' },
  700023: { meaning: 'the assertion was made for another tenant\'s endpoint', fix: 'set tenant (or token_url) to your own tenant' },
  700024: { meaning: 'the assertion is not within its valid time range: this machine\'s clock is off', fix: 'set the clock right (timedatectl; turn NTP on)' },
  7000218: { meaning: 'the request carried neither a client secret nor a certificate assertion', fix: 'set client_secret_file, or assertion_certificate and assertion_key' },
  1002012: { meaning: 'app-only requests need a scope ending in /.default', fix: SCOPE_FIX },
  70011: { meaning: 'the scope is not valid', fix: SCOPE_FIX },
  500011: { meaning: 'the tenant has no such resource: the scope names a service it does not have (Exchange Online is missing, or the scope is mistyped)', fix: SCOPE_FIX },
};

/** The token endpoint's refusal in plain words, from its AADSTS code or its RFC 6749 error. */
export function explainTokenError(json: Readonly<Record<string, unknown>> | undefined): Explained | undefined {
  const codes = Array.isArray(json?.['error_codes']) ? json['error_codes'] : [];
  const fromText = /AADSTS(\d+)/.exec(typeof json?.['error_description'] === 'string' ? json['error_description'] : '')?.[1];
  const code = typeof codes[0] === 'number' ? codes[0] : fromText ? Number(fromText) : undefined;
  if (code !== undefined && AADSTS[code]) return AADSTS[code];
  switch (json?.['error']) {
    case 'invalid_client': return { meaning: 'the token endpoint does not accept the app\'s credentials', fix: 'check client_id, and client_secret_file or the certificate uploaded to the app registration' };
    case 'unauthorized_client': return { meaning: 'this app may not use the client-credentials grant', fix: 'check that the app registration is in this tenant and has application permissions with admin consent' };
    case 'invalid_scope': return { meaning: 'the scope is not valid', fix: SCOPE_FIX };
    default: return undefined;
  }
}
