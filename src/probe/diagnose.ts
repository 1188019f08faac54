// What a failed probe step means, in plain words, and what to change: every fact the walk
// can run into becomes one sentence and one fix here, and nowhere else, so the wording can be
// table-tested. Pure: no I/O, no config reading.
import type { OutboundTls } from '../config/types.js';
import { explainMicrosoftReply, type ReplyContext } from '../oauth/microsoft-replies.js';
import { explainTls } from '../smtp/classify.js';
import { describeShape, shapeFix, type PostfixShape } from '../smtp/password-file.js';

export interface Advice { readonly diagnosis: string; readonly fix: string }

export type Fact =
  | { kind: 'dns'; host: string; code: string }
  | { kind: 'connect'; host: string; ip: string; port: number; code: string; timeoutMs: number }
  /** Connected, no greeting; `expectsTls`: a TLS handshake on a new connection did succeed. */
  | { kind: 'no-greeting'; host: string; port: number; timeoutMs: number; expectsTls: boolean }
  | { kind: 'greeting-refused'; reply: string }
  | { kind: 'not-smtp'; line: string }
  | { kind: 'tls-files'; message: string }
  /** smtps:// to a port that speaks plain SMTP; `reply` is the greeting seen in plaintext, if any. */
  | { kind: 'tls-on-plain-port'; host: string; port: number; message: string; reply?: string }
  | { kind: 'tls-handshake'; label: string; message: string; tls: OutboundTls }
  | { kind: 'starttls-missing'; host: string; tls: OutboundTls; username?: string }
  | { kind: 'starttls-refused'; reply: string; tls: OutboundTls }
  | { kind: 'certificate'; label: string; message: string }
  | { kind: 'ehlo-refused'; reply: string; ehloName: string }
  | { kind: 'credentials-unreadable'; message: string }
  | { kind: 'auth-plaintext'; tls: OutboundTls; username: string }
  | { kind: 'auth-not-offered'; beforeTls: boolean; username: string }
  | { kind: 'auth-mechanisms'; offered: readonly string[]; configured: readonly string[] }
  | { kind: 'auth-rejected'; reply: string; username: string; source: string; mechanism: string; postfix?: { file: string; shape: PostfixShape } }
  /** The password file holds a Postfix sasl_passwd line or the route's "user:password": no login was tried. */
  | { kind: 'password-file-shape'; file: string; shape: PostfixShape }
  /** auth = "oauth2": no access token; `message` is the token source's own (OAuthError), reason and what to do. */
  | { kind: 'oauth-token'; message: string }
  /** auth = "oauth2": the server refused the token; `fresh`: it came from a token grant made for this probe. */
  | { kind: 'oauth-rejected'; reply: string; mechanism: string; fresh: boolean; challenge?: string; scope?: string; login: ReplyContext }
  /** `login`: how the auth step logged in with OAuth2, to explain Microsoft 365's refusals. */
  | { kind: 'mail'; reply: string; sender: string; original: string; section: string; username?: string; authenticated: boolean; login?: ReplyContext }
  | { kind: 'rcpt'; reply: string; rcpt: string; section: string; authenticated: boolean }
  | { kind: 'data'; reply: string; login?: ReplyContext }
  | { kind: 'silent'; step: string; timeoutMs: number }
  | { kind: 'lost'; step: string; message: string };

const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;
const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;
const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1);

/** The one place that turns a fact into a diagnosis and a fix. */
export function advise(f: Fact): Advice {
  switch (f.kind) {
    case 'dns': return dns(f.host, f.code);
    case 'connect': return connect(f);
    case 'no-greeting': return f.expectsTls
      ? { diagnosis: `the server accepted the connection but said nothing for ${seconds(f.timeoutMs)}, and a TLS handshake on a new connection succeeded: this port expects TLS from the first byte`,
          fix: `use smtps://${hostPort(f.host, f.port)}` }
      : { diagnosis: `the server accepted the connection but sent no greeting within ${seconds(f.timeoutMs)} (it does not speak TLS on this port either)`,
          fix: `check the port (587 for STARTTLS, 465 for TLS); the server may be overloaded, or a proxy or firewall holds the connection; try a longer --timeout` };
    case 'greeting-refused': return {
      diagnosis: `the server refused the session at its greeting: ${f.reply}`,
      fix: 'your address may be blocked or rate-limited by the provider; ask them, or try again later if the code is 4xx' };
    case 'not-smtp': return {
      diagnosis: `the server does not speak SMTP on this port: it said "${f.line.slice(0, 80)}"`,
      fix: 'check the port in url (587 is submission with STARTTLS, 465 is TLS from the first byte)' };
    case 'tls-files': return {
      diagnosis: `the TLS files of this upstream cannot be read: ${f.message}`,
      fix: 'check ca_file, client_certificate and client_key (paths and permissions)' };
    case 'tls-on-plain-port': return {
      diagnosis: `the TLS handshake failed (${f.message}) because this port speaks plain SMTP${f.reply ? `: it greeted in plaintext with "${f.reply}"` : ''}`,
      fix: `use smtp://${hostPort(f.host, f.port)} (plain SMTP with STARTTLS)` };
    case 'tls-handshake': return tlsHandshake(f.label, f.message, f.tls);
    case 'starttls-missing': return starttlsMissing(f);
    case 'starttls-refused': return {
      diagnosis: `the server offers STARTTLS but refused it: ${f.reply}${f.tls === 'may' ? '; with tls = "may" mail would continue in plaintext' : '; with a mandatory tls level mail would be deferred'}`,
      fix: 'ask the provider; meanwhile use its TLS port (smtps://HOST:465) if it has one' };
    case 'certificate': return certificate(f.label, f.message);
    case 'ehlo-refused': return {
      diagnosis: `the server refused EHLO ${f.ehloName}: ${f.reply}`,
      fix: 'set hostname in smarthost.toml to a fully qualified name the upstream accepts (one that resolves to this host)' };
    case 'credentials-unreadable': return {
      diagnosis: `the password cannot be read: ${f.message}`,
      fix: 'check password_file (readable by smarthost, first line is the password) or that password_env is set' };
    case 'auth-plaintext': return {
      diagnosis: `the connection is not encrypted (${f.tls === 'none' ? 'tls = "none"' : 'no TLS'}), and smarthost never sends the credentials for "${f.username}" in clear text, so it would not log in`,
      fix: 'set tls = "verify" (or "encrypt"); allow_plaintext_auth = true only for a tunnel on 127.0.0.1' };
    case 'auth-not-offered': return f.beforeTls
      ? { diagnosis: `the server offers STARTTLS but no AUTH before TLS, so smarthost cannot log in as "${f.username}" without starting TLS first`,
          fix: 'set tls = "verify" (or "encrypt") so that smarthost starts TLS before AUTH' }
      : { diagnosis: `the server offers no AUTH at all, so the username "${f.username}" would not be used; servers that want a login then refuse MAIL FROM or RCPT TO`,
          fix: 'use the provider\'s submission port (smtp://HOST:587 or smtps://HOST:465); port 25 usually takes no AUTH, or drop username if the server needs none' };
    case 'auth-mechanisms': return f.configured.some((m) => m === 'XOAUTH2' || m === 'OAUTHBEARER') ? {
      diagnosis: `the server offers AUTH ${f.offered.join(' ')}, but auth = "oauth2" with mechanisms = [${f.configured.map((m) => `"${m}"`).join(', ')}] needs one of them`,
      fix: f.offered.includes('OAUTHBEARER') ? 'write mechanisms = ["OAUTHBEARER"]' : f.offered.includes('XOAUTH2') ? 'write mechanisms = ["XOAUTH2"]'
        : 'this server takes no OAuth2 login: check url against the provider\'s SMTP host for OAuth2' } : {
      diagnosis: `the server offers AUTH ${f.offered.join(' ')}, but mechanisms = [${f.configured.map((m) => `"${m}"`).join(', ')}] allows none of them`,
      fix: `add one of them, e.g. mechanisms = ["${f.offered.find((m) => ['PLAIN', 'LOGIN', 'CRAM-MD5'].includes(m)) ?? f.offered[0] ?? 'PLAIN'}"]` };
    case 'auth-rejected': return microsoft(f.reply, { login: 'password', mailbox: f.username, route: '' }, `the server rejected username "${f.username}" with the password from ${f.source} (AUTH ${f.mechanism})`) ?? (f.postfix ? {
      diagnosis: `the server rejected username "${f.username}" with the password from ${f.source} (AUTH ${f.mechanism}): ${f.reply}; ${describeShape(f.postfix.file, f.postfix.shape)}`,
      fix: shapeFix(f.postfix.file) } : {
      diagnosis: `the server rejected username "${f.username}" with the password from ${f.source} (AUTH ${f.mechanism}): ${f.reply}`,
      fix: `check the username and the password in ${f.source}; many providers want an app password or an API key, not the web login` });
    case 'password-file-shape': return {
      diagnosis: `${describeShape(f.file, f.shape)} (Postfix's sasl_passwd format; smarthost reads the password alone), so smarthost did not try to log in`,
      fix: shapeFix(f.file) };
    case 'oauth-token': return oauthToken(f.message);
    case 'oauth-rejected': return oauthRejected(f);
    case 'mail': return mail(f);
    case 'rcpt': return rcpt(f);
    case 'data': return (f.login && microsoft(f.reply, f.login, 'the server refused the test message')) || {
      diagnosis: `the server refused the test message: ${f.reply}`,
      fix: /^4/.test(f.reply) ? 'a temporary refusal: try again later' : 'read the reply: size limits, content filters and sender policies answer here' };
    case 'silent': return {
      diagnosis: `the server did not answer ${f.step} within ${seconds(f.timeoutMs)}`,
      fix: 'try a longer --timeout; a server that stalls at this step is overloaded or misbehaving' };
    case 'lost': return {
      diagnosis: `the server closed the connection during ${f.step} (${f.message})`,
      fix: 'servers hang up on clients they distrust: check that your address is not on a blocklist, and read the server\'s last reply' };
  }
}

function dns(host: string, code: string): Advice {
  if (code === 'ENOTFOUND' || code === 'ENODATA') {
    return { diagnosis: `the name ${host} does not exist (not in /etc/hosts, and DNS has no address for it)`, fix: `check the spelling of the host in url; the provider's documentation names its SMTP host` };
  }
  return { diagnosis: `the name ${host} could not be resolved: the name service failed (${code})`, fix: 'check /etc/resolv.conf and the network; this is usually temporary' };
}

function connect(f: { host: string; ip: string; port: number; code: string; timeoutMs: number }): Advice {
  const where = `${f.host}[${f.ip}]:${f.port}`;
  if (f.code === 'ETIMEDOUT' && f.port === 25) {
    return { diagnosis: `no answer from ${where} within ${seconds(f.timeoutMs)}: many ISPs and cloud providers block outgoing port 25`,
      fix: `use the provider's submission port: smtp://${hostPort(f.host, 587)} or smtps://${hostPort(f.host, 465)}` };
  }
  if (f.code === 'ETIMEDOUT') {
    return { diagnosis: `no answer from ${where} within ${seconds(f.timeoutMs)}: a firewall drops the packets, or the host is down`,
      fix: `check the host and port; make sure outgoing connections to port ${f.port} are allowed here` };
  }
  if (f.code === 'ECONNREFUSED') {
    return { diagnosis: `${where} refused the connection: nothing listens on port ${f.port} there`,
      fix: 'check the port in url (587 is submission with STARTTLS, 465 is TLS from the first byte); the server may be down' };
  }
  if (f.code === 'EHOSTUNREACH' || f.code === 'ENETUNREACH') {
    return { diagnosis: `${where} cannot be reached (${f.code}): no route to that network`, fix: 'check the network and firewall of this host (IPv6 without a route is a common case)' };
  }
  return { diagnosis: `connecting to ${where} failed (${f.code})`, fix: 'check the host and port in url' };
}

function tlsHandshake(label: string, message: string, level: OutboundTls): Advice {
  const base = certificate(label, message);
  if (level !== 'may') return base;
  return { diagnosis: `${base.diagnosis}; with tls = "may" smarthost retries in plaintext, and sends no credentials then`, fix: base.fix };
}

/** explainTls (shared with delivery) ends in "; what to do": that tail becomes the fix. */
function certificate(label: string, message: string): Advice {
  const text = explainTls(message, label);
  const cut = text.lastIndexOf('; ');
  if (cut < 0) return { diagnosis: text, fix: 'check the upstream\'s TLS set-up, or set tls = "encrypt" to skip certificate checks' };
  return { diagnosis: text.slice(0, cut), fix: text.slice(cut + 2) };
}

function starttlsMissing(f: { host: string; tls: OutboundTls; username?: string }): Advice {
  const ports = `use the provider's TLS port smtps://${f.host}:465 or its STARTTLS port smtp://${f.host}:587`;
  if (f.tls === 'may') {
    return { diagnosis: `the server does not offer STARTTLS: with tls = "may" mail would go in plaintext, and the credentials for "${f.username ?? ''}" would not be sent (AUTH not attempted)`,
      fix: `${ports}; allow_plaintext_auth = true only for a tunnel on 127.0.0.1` };
  }
  return { diagnosis: `the server does not offer STARTTLS: with tls = "${f.tls}" mail to this upstream would be deferred (a mandatory level never falls back to plaintext)`,
    fix: `${ports}; or set tls = "may" if plaintext is acceptable on this network` };
}

/**
 * The token source's message is "<what failed>: <reason>; <what to do>" (oauth/token-source.ts
 * `failure`): the reason stays quoted in the diagnosis, the advice becomes the fix.
 */
function oauthToken(message: string): Advice {
  const cut = message.indexOf('; ');
  if (cut < 0) return { diagnosis: `no OAuth2 access token: ${message}`, fix: 'check the OAuth2 settings (token_url, client_id, refresh_token_file)' };
  return { diagnosis: `no OAuth2 access token: ${message.slice(0, cut)}`, fix: message.slice(cut + 2) };
}

/** A refusal Microsoft 365 is known for: what it means, and its fix from oauth/microsoft-replies.ts. */
function microsoft(reply: string, login: ReplyContext, what: string): Advice | undefined {
  const e = explainMicrosoftReply(reply, login);
  return e ? { diagnosis: `${what}: ${reply}; ${e.meaning}`, fix: e.fix } : undefined;
}

function oauthRejected(f: { reply: string; mechanism: string; fresh: boolean; challenge?: string; scope?: string; login: ReplyContext }): Advice {
  const app = f.login.login === 'app';
  const token = `${f.fresh ? `a freshly ${app ? 'issued' : 'refreshed'}` : 'an'} ${app ? 'app-only ' : ''}access token${f.fresh ? ' (so it has not expired)' : ''}`;
  const challenge = f.challenge ? ` (error challenge: ${f.challenge})` : '';
  const what = `the server refused ${token} for mailbox "${f.login.mailbox}" (AUTH ${f.mechanism})${challenge}`;
  return microsoft(f.reply, f.login, what) ?? {
    diagnosis: `${what}: ${f.reply}`,
    fix: `check that SMTP AUTH is enabled for the mailbox ${f.login.mailbox} (Microsoft 365: "Authenticated SMTP"), and that the ${f.login.login === 'app' ? 'app\'s' : 'sign-in\'s'} scope ` +
      `${f.scope ? `(scope = "${f.scope}") ` : ''}covers SMTP${f.login.login === 'app' ? '' : `; after changing the scope run "smarthost oauth login ${f.login.route}"`}`,
  };
}

// 530 (RFC 4954 §6), Postfix/Exim wording, and Microsoft 365's 5.7.57 "Client not authenticated"
const AUTH_REQUIRED = /^530\b|authenticat(ion|e) (is )?required|not authenticated|must (authenticate|log ?in)/i;
const BAD_SENDER = /^553\b|^5\d\d[ -]5\.1\.[0-8]\b|^5\d\d[ -]5\.7\.1\b|sender|return address|from address|not owned|not allowed to send/i;

function mail(f: { reply: string; sender: string; original: string; section: string; username?: string; authenticated: boolean; login?: ReplyContext }): Advice {
  const ms = f.login && microsoft(f.reply, f.login, `the server refused MAIL FROM <${f.sender}>`);
  if (ms) return ms;
  if (AUTH_REQUIRED.test(f.reply)) {
    if (!f.username) {
      return { diagnosis: `the server wants a login before MAIL FROM: ${f.reply}`, fix: `add username and password_file (or password_env) to ${f.section}` };
    }
    return { diagnosis: `the server wants a login before MAIL FROM, and smarthost ${f.authenticated ? `logged in as "${f.username}" but it still refuses` : `did not log in as "${f.username}"`}: ${f.reply}`,
      fix: f.authenticated ? 'ask the provider whether this account may send mail' : 'see the auth step above: use TLS and a mechanism the server offers' };
  }
  if (/^5/.test(f.reply) && BAD_SENDER.test(f.reply)) {
    const from = f.original.includes('@') ? domainOf(f.original) : f.original;
    const rewritten = f.sender !== f.original ? ` (rewritten from ${f.original} by [rewrite] senders)` : '';
    return { diagnosis: `the server rejected the sender <${f.sender}>${rewritten} as a return address: ${f.reply}`,
      fix: `send as an address of your own verified domain: [rewrite] senders = { "@${from}" = "you@yourdomain" } (try it first with --from you@yourdomain)` };
  }
  if (/^4/.test(f.reply)) return { diagnosis: `the server deferred MAIL FROM <${f.sender}>: ${f.reply}`, fix: 'a temporary refusal: try again later; if it persists, ask the provider' };
  return { diagnosis: `the server refused MAIL FROM <${f.sender}>: ${f.reply}`, fix: 'read the reply; try another sender with --from' };
}

function rcpt(f: { reply: string; rcpt: string; section: string; authenticated: boolean }): Advice {
  if (/relay/i.test(f.reply) || /^5\d\d[ -]5\.7\.1\b/.test(f.reply)) {
    return { diagnosis: `the server will not relay mail to <${f.rcpt}> for this client: ${f.reply}`,
      fix: f.authenticated ? 'this account may not send to that domain: ask the provider' : `log in: add username and password_file (or password_env) to ${f.section}, or have the provider allow your address` };
  }
  if (/^5\d\d[ -]5\.1\.[12]\b|unknown|no such user/i.test(f.reply)) {
    return { diagnosis: `the server says the recipient <${f.rcpt}> does not exist: ${f.reply}`, fix: 'check the address given to --send-test' };
  }
  if (/^4/.test(f.reply)) return { diagnosis: `the server deferred RCPT TO <${f.rcpt}>: ${f.reply}`, fix: 'a temporary refusal (greylisting, rate limits): try again later' };
  return { diagnosis: `the server refused RCPT TO <${f.rcpt}>: ${f.reply}`, fix: 'read the reply; try another recipient with --send-test' };
}
