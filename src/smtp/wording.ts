// The words for an outbound failure: its cause and what to change. One table for the
// delivery log line (classify.ts) and for `smarthost probe` (probe/diagnose.ts), so the
// log says what probe says. Causes carry no raw OpenSSL text, and after the Postfix prefix
// the log keeps ": " out of its own words where it can: pflogsumm's deferral summary cuts
// reasons at ": ". Pure: no I/O.
import type { OutboundTls } from '../config/types.js';

export interface Advice { readonly diagnosis: string; readonly fix: string }

export const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;
const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;
/** The domain as written (case kept for the reader; mail/address.ts's domainOf folds it). */
const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1);

/** System error codes in the words Postfix logs them with ("connect to host[addr]:port: Connection refused"). */
export const NET_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused', EHOSTUNREACH: 'No route to host', ENETUNREACH: 'Network is unreachable',
  ECONNRESET: 'Connection reset by peer', ETIMEDOUT: 'Connection timed out', EADDRNOTAVAIL: 'Cannot assign requested address',
};

/** A refused connection; the log's Postfix part ("connect to h[a]:p: Connection refused") already names the host. */
export function refusedAdvice(port: number, portKnob = 'url'): Advice {
  return { diagnosis: `nothing listens on port ${port} there`,
    fix: `check the port in ${portKnob} (587 is submission with STARTTLS, 465 is TLS from the first byte); the server may be down` };
}

/** A connection that failed: `where` is "host[ip]:port"; `portKnob` where the port is set ("url", or "[mx] port"). */
export function connectAdvice(f: { where: string; port: number; code: string; timeoutMs: number; host: string; portKnob?: string }): Advice {
  const knob = f.portKnob ?? 'url';
  if (f.code === 'ETIMEDOUT' && f.port === 25) {
    return { diagnosis: `no answer from ${f.where} within ${seconds(f.timeoutMs)}; many ISPs and cloud providers block outgoing port 25`,
      fix: knob === '[mx] port' ? 'deliver through a provider\'s submission port instead, [relay] url = "smtp://smtp.provider.example:587" with username and password_file'
        : `use the provider's submission port, smtp://${hostPort(f.host, 587)} or smtps://${hostPort(f.host, 465)}` };
  }
  if (f.code === 'ETIMEDOUT') {
    return { diagnosis: `no answer from ${f.where} within ${seconds(f.timeoutMs)}; a firewall drops the packets, or the host is down`,
      fix: `check the host and port; make sure outgoing connections to port ${f.port} are allowed here` };
  }
  if (f.code === 'ECONNREFUSED') {
    const r = refusedAdvice(f.port, knob);
    return { diagnosis: `${f.where} refused the connection: ${r.diagnosis}`, fix: r.fix };
  }
  if (f.code === 'EHOSTUNREACH' || f.code === 'ENETUNREACH') {
    return { diagnosis: `${f.where} cannot be reached (${f.code}), no route to that network`, fix: 'check the network and firewall of this host (IPv6 without a route is a common case)' };
  }
  return { diagnosis: `connecting to ${f.where} failed (${f.code})`, fix: `check the host and port in ${knob}` };
}

/**
 * Connected, no greeting. `expectsTls`: a TLS handshake on a new connection succeeded (true), failed
 * (false), or was not tried (undefined: an MX host, always plain SMTP on [mx] port).
 */
export function noGreetingAdvice(f: { host: string; port: number; timeoutMs: number; expectsTls: boolean | undefined; timeoutKnob: string }): Advice {
  if (f.expectsTls) {
    return { diagnosis: `the server accepted the connection but said nothing for ${seconds(f.timeoutMs)}, and a TLS handshake on a new connection succeeded: this port expects TLS from the first byte`,
      fix: `use smtps://${hostPort(f.host, f.port)}` };
  }
  const busy = `the server may be overloaded, or a proxy or firewall holds the connection; try a longer ${f.timeoutKnob}`;
  if (f.expectsTls === undefined) return { diagnosis: `the server accepted the connection but sent no greeting within ${seconds(f.timeoutMs)}`, fix: busy };
  return { diagnosis: `the server accepted the connection but sent no greeting within ${seconds(f.timeoutMs)} (it does not speak TLS on this port either)`,
    fix: `check the port (587 for STARTTLS, 465 for TLS); ${busy}` };
}

export function greetingRefusedAdvice(reply = ''): Advice {
  return { diagnosis: `the server refused the session at its greeting: ${reply}`,
    fix: 'your address may be blocked or rate-limited by the provider; ask them, or try again later if the code is 4xx' };
}

/** smtps:// to a port that speaks plain SMTP; `reply`: the greeting a plaintext connection got, if any. */
export function tlsOnPlainPortAdvice(f: { label: string; host: string; port: number; reply?: string }): Advice {
  return {
    diagnosis: `the TLS handshake with ${f.label} failed because this port speaks plain SMTP${f.reply ? ` (it greeted in plaintext with "${f.reply}")` : ''}`,
    fix: `use smtp://${hostPort(f.host, f.port)} (plain SMTP with STARTTLS)` };
}

/** OpenSSL's reason ("wrong version number") out of its whole error string with codes, file and line. */
export function tlsReason(message: string): string {
  const m = message.replace(/^Error initiating TLS - /, '').replace(/\s*\n\s*/g, ' ').trim();
  return /error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(m)?.[1]?.trim() ?? m;
}

/** Node's certificate and handshake errors in plain words: what failed and what to do. */
export function tlsAdvice(message: string, label: string): Advice {
  const m = tlsReason(message);
  const cert = `the certificate of ${label}`;
  if (/certificate has expired/i.test(m)) return { diagnosis: `${cert} has expired`, fix: 'the upstream must renew it, or set tls = "encrypt" to skip verification' };
  if (/not yet valid/i.test(m)) return { diagnosis: `${cert} is not valid yet`, fix: 'check both clocks' };
  if (/self[- ]signed certificate in certificate chain/i.test(m)) return { diagnosis: `the certificate chain of ${label} ends in a self-signed CA that is not trusted`, fix: 'add that CA as ca_file, or set tls = "encrypt"' };
  if (/self[- ]signed/i.test(m)) return { diagnosis: `${cert} is self-signed`, fix: 'add it as ca_file, or set tls = "encrypt" to skip verification' };
  const names = /(?:altnames|names): (.*)$/.exec(m)?.[1];
  if (/altnames|does not match/i.test(m)) return { diagnosis: `${cert} is for other names${names ? ` (${names.trim()})` : ''}`, fix: 'use a url with one of those names, or set tls = "encrypt"' };
  if (/unable to (get local issuer|verify the first)/i.test(m)) return { diagnosis: `${cert} is not signed by a trusted CA`, fix: 'set ca_file to the CA that signed it' };
  if (/packet length too long|http request|wrong version number/i.test(m)) {
    return { diagnosis: `the TLS handshake with ${label} failed because the server does not speak TLS from the first byte on this port`, fix: 'if it is a STARTTLS port (587, 25) use smtp://, smtps:// is for port 465' };
  }
  if (/unsupported protocol|no protocols available|protocol version/i.test(m)) {
    return { diagnosis: `the TLS handshake with ${label} found no common TLS version`, fix: 'the upstream may need tls_min_version lowered, or it does not speak TLS on this port (smtps:// vs smtp://)' };
  }
  return { diagnosis: `the TLS handshake with ${label} failed (${m})`, fix: 'check the upstream\'s TLS set-up, or set tls = "encrypt" to skip certificate checks' };
}

export function starttlsMissingAdvice(f: { host: string; tls: OutboundTls; username?: string }): Advice {
  const ports = `use the provider's TLS port smtps://${f.host}:465 or its STARTTLS port smtp://${f.host}:587`;
  if (f.tls === 'may') {
    return { diagnosis: `the server does not offer STARTTLS, so with tls = "may" mail would go in plaintext, and the credentials for "${f.username ?? ''}" would not be sent`,
      fix: `${ports}; allow_plaintext_auth = true only for a tunnel on 127.0.0.1` };
  }
  return { diagnosis: `the server does not offer STARTTLS, so with tls = "${f.tls}" mail to this upstream is deferred (a mandatory level never falls back to plaintext)`,
    fix: `${ports}; or set tls = "may" if plaintext is acceptable on this network` };
}

export function authPlaintextAdvice(f: { tls: OutboundTls; username: string }): Advice {
  return {
    diagnosis: `the connection is not encrypted (${f.tls === 'none' ? 'tls = "none"' : 'no TLS'}), and smarthost never sends the credentials for "${f.username}" in clear text, so it would not log in`,
    fix: 'set tls = "verify" (or "encrypt"); allow_plaintext_auth = true only for a tunnel on 127.0.0.1' };
}

/** The server wants a login (530 …) but offers no AUTH, or none before TLS. */
export function authNotOfferedAdvice(f: { beforeTls: boolean; username: string }): Advice {
  return f.beforeTls
    ? { diagnosis: `the server offers STARTTLS but no AUTH before TLS, so smarthost cannot log in as "${f.username}" without starting TLS first`,
        fix: 'set tls = "verify" (or "encrypt") so that smarthost starts TLS before AUTH' }
    : { diagnosis: `the server offers no AUTH at all, so smarthost could not log in as "${f.username}"; servers that want a login then refuse MAIL FROM or RCPT TO`,
        fix: 'use the provider\'s submission port (smtp://HOST:587 or smtps://HOST:465); port 25 usually takes no AUTH, or drop username if the server needs none' };
}

export function authMechanismsAdvice(f: { offered: readonly string[]; configured: readonly string[] }): Advice {
  const list = `mechanisms = [${f.configured.map((m) => `"${m}"`).join(', ')}]`;
  if (f.configured.some((m) => m === 'XOAUTH2' || m === 'OAUTHBEARER')) {
    return { diagnosis: `the server offers AUTH ${f.offered.join(' ')}, but auth = "oauth2" with ${list} needs one of them`,
      fix: f.offered.includes('OAUTHBEARER') ? 'write mechanisms = ["OAUTHBEARER"]' : f.offered.includes('XOAUTH2') ? 'write mechanisms = ["XOAUTH2"]'
        : 'this server takes no OAuth2 login; check url against the provider\'s SMTP host for OAuth2' };
  }
  return { diagnosis: `the server offers AUTH ${f.offered.join(' ') || '(none)'}, but ${list} allows none of them`,
    fix: `add one of them, e.g. mechanisms = ["${f.offered.find((m) => ['PLAIN', 'LOGIN', 'CRAM-MD5'].includes(m)) ?? f.offered[0] ?? 'PLAIN'}"]` };
}

export function authRejectedAdvice(f: { username: string; source: string; mechanism: string }): Advice {
  return { diagnosis: `the server rejected username "${f.username}" with the password from ${f.source} (AUTH ${f.mechanism})`,
    fix: `check the username and the password in ${f.source}; many providers want an app password or an API key, not the web login` };
}

/** "530 Authentication required" at MAIL FROM: what smarthost did about logging in. */
export function loginWantedAdvice(f: { section: string; username?: string; authenticated: boolean; authOffered: boolean }): Advice {
  if (!f.username) return { diagnosis: 'the server wants a login before MAIL FROM', fix: `add username and password_file (or password_env) to ${f.section}` };
  if (!f.authOffered && !f.authenticated) return authNotOfferedAdvice({ beforeTls: false, username: f.username });
  return { diagnosis: `the server wants a login before MAIL FROM, and smarthost ${f.authenticated ? `logged in as "${f.username}" but it still refuses` : `did not log in as "${f.username}"`}`,
    fix: f.authenticated ? 'ask the provider whether this account may send mail' : 'use TLS and a mechanism the server offers (see smarthost probe)' };
}

/** A 5xx at MAIL FROM that names the sender: the provider takes only its own customers' addresses. */
export const BAD_SENDER = /^553\b|^5\d\d[ -]5\.1\.[0-8]\b|^5\d\d[ -]5\.7\.1\b|sender|return address|from address|not owned|not allowed to send/i;

export function senderRefusedAdvice(f: { sender: string; original: string }): Advice {
  const from = f.original.includes('@') ? domainOf(f.original) : f.original;
  const rewritten = f.sender !== f.original ? ` (rewritten from ${f.original} by [rewrite] senders)` : '';
  return { diagnosis: `the server rejected the sender <${f.sender}>${rewritten} as a return address`,
    fix: `send as an address of your own verified domain with [rewrite] senders = { "@${from}" = "you@yourdomain" }` };
}

export function dataRefusedAdvice(reply: string, what = 'the message'): Advice {
  return { diagnosis: `the server refused ${what}`,
    fix: /^4/.test(reply) ? 'a temporary refusal; smarthost tries again later' : 'read the reply; size limits, content filters and sender policies answer here' };
}
