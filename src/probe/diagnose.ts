// What a failed probe step means, in plain words, and what to change: every fact the walk
// can run into becomes one sentence and one fix here, and nowhere else, so the wording can be
// table-tested. Pure: no I/O, no config reading.
import type { OutboundTls } from '../config/types.js';
import { explainMicrosoftReply, type ReplyContext } from '../oauth/microsoft-replies.js';
import { wantsLogin } from '../smtp/failure.js';
import { describeShape, shapeFix, type PostfixShape } from '../smtp/password-file.js';
import {
  authMechanismsAdvice, authNotOfferedAdvice, authPlaintextAdvice, authRejectedAdvice, BAD_SENDER, greetingRefusedAdvice, connectAdvice, dataRefusedAdvice, loginWantedAdvice,
  noGreetingAdvice, senderRefusedAdvice, seconds, starttlsMissingAdvice, tlsAdvice, tlsOnPlainPortAdvice, type Advice,
} from '../smtp/wording.js';

export type { Advice } from '../smtp/wording.js';

export type Fact =
  | { kind: 'dns'; host: string; code: string }
  | { kind: 'connect'; host: string; ip: string; port: number; code: string; timeoutMs: number }
  /** Connected, no greeting; `expectsTls`: a TLS handshake on a new connection did succeed. */
  | { kind: 'no-greeting'; host: string; port: number; timeoutMs: number; expectsTls: boolean }
  | { kind: 'greeting-refused'; reply: string }
  | { kind: 'not-smtp'; line: string }
  | { kind: 'tls-files'; message: string }
  /** smtps:// to a port that speaks plain SMTP; `reply` is the greeting seen in plaintext, if any. */
  | { kind: 'tls-on-plain-port'; label: string; host: string; port: number; message: string; reply?: string }
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
  | { kind: 'mail'; reply: string; sender: string; original: string; section: string; username?: string; authenticated: boolean; authOffered: boolean; login?: ReplyContext }
  | { kind: 'rcpt'; reply: string; rcpt: string; section: string; authenticated: boolean }
  | { kind: 'data'; reply: string; login?: ReplyContext }
  | { kind: 'silent'; step: string; timeoutMs: number }
  | { kind: 'lost'; step: string; message: string };


/** The one place that turns a fact into a diagnosis and a fix. */
export function advise(f: Fact): Advice {
  switch (f.kind) {
    case 'dns': return dns(f.host, f.code);
    case 'connect': return connect(f);
    case 'no-greeting': return noGreetingAdvice({ ...f, timeoutKnob: '--timeout' });
    case 'greeting-refused': return greetingRefusedAdvice(f.reply);
    case 'not-smtp': return {
      diagnosis: `the server does not speak SMTP on this port: it said "${f.line.slice(0, 80)}"`,
      fix: 'check the port in url (587 is submission with STARTTLS, 465 is TLS from the first byte)' };
    case 'tls-files': return {
      diagnosis: `the TLS files of this upstream cannot be read: ${f.message}`,
      fix: 'check ca_file, client_certificate and client_key (paths and permissions)' };
    case 'tls-on-plain-port': return tlsOnPlainPortAdvice(f);
    case 'tls-handshake': return tlsHandshake(f.label, f.message, f.tls);
    case 'starttls-missing': return starttlsMissingAdvice(f);
    case 'starttls-refused': return {
      diagnosis: `the server offers STARTTLS but refused it: ${f.reply}${f.tls === 'may' ? '; with tls = "may" mail would continue in plaintext' : '; with a mandatory tls level mail would be deferred'}`,
      fix: 'ask the provider; meanwhile use its TLS port (smtps://HOST:465) if it has one' };
    case 'certificate': return tlsAdvice(f.message, f.label);
    case 'ehlo-refused': return {
      diagnosis: `the server refused EHLO ${f.ehloName}: ${f.reply}`,
      fix: 'set hostname in smarthost.toml to a fully qualified name the upstream accepts (one that resolves to this host)' };
    case 'credentials-unreadable': return {
      diagnosis: `the password cannot be read: ${f.message}`,
      fix: 'check password_file (readable by smarthost, first line is the password) or that password_env is set' };
    case 'auth-plaintext': return authPlaintextAdvice(f);
    case 'auth-not-offered': return authNotOfferedAdvice(f);
    case 'auth-mechanisms': return authMechanismsAdvice(f);
    case 'auth-rejected': return microsoft(f.reply, { login: 'password', mailbox: f.username, route: '' }, authRejectedAdvice(f).diagnosis) ?? (f.postfix ? {
      diagnosis: `${authRejectedAdvice(f).diagnosis}: ${f.reply}; ${describeShape(f.postfix.file, f.postfix.shape)}`, fix: shapeFix(f.postfix.file) }
      : withReply(authRejectedAdvice(f), f.reply));
    case 'password-file-shape': return {
      diagnosis: `${describeShape(f.file, f.shape)} (Postfix's sasl_passwd format; smarthost reads the password alone), so smarthost did not try to log in`,
      fix: shapeFix(f.file) };
    case 'oauth-token': return oauthToken(f.message);
    case 'oauth-rejected': return oauthRejected(f);
    case 'mail': return mail(f);
    case 'rcpt': return rcpt(f);
    case 'data': return (f.login && microsoft(f.reply, f.login, 'the server refused the test message')) || withReply(dataRefusedAdvice(f.reply, 'the test message'), f.reply);
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
  return connectAdvice({ ...f, where: `${f.host}[${f.ip}]:${f.port}` });
}

function tlsHandshake(label: string, message: string, level: OutboundTls): Advice {
  const base = tlsAdvice(message, label);
  if (level !== 'may') return base;
  return { diagnosis: `${base.diagnosis}; with tls = "may" smarthost retries in plaintext, and sends no credentials then`, fix: base.fix };
}

/** The cause, then the upstream's reply as received. */
function withReply(a: Advice, reply: string): Advice {
  return { diagnosis: `${a.diagnosis}: ${reply}`, fix: a.fix };
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

function mail(f: { reply: string; sender: string; original: string; section: string; username?: string; authenticated: boolean; authOffered: boolean; login?: ReplyContext }): Advice {
  const ms = f.login && microsoft(f.reply, f.login, `the server refused MAIL FROM <${f.sender}>`);
  if (ms) return ms;
  if (wantsLogin(f.reply)) return withReply(loginWantedAdvice(f), f.reply);
  if (/^5/.test(f.reply) && BAD_SENDER.test(f.reply)) {
    const a = senderRefusedAdvice(f);
    return { diagnosis: `${a.diagnosis}: ${f.reply}`, fix: `${a.fix} (try it first with --from you@yourdomain)` };
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
