// Every outbound failure becomes a Dsn here, in one place: nodemailer's error
// code and the upstream's reply give sent / deferred / bounced and a reason in
// Postfix's words ("host x[ip] said: ... (in reply to RCPT TO command)").
// Unknown means temporary: a wrong guess must never bounce mail.
import type { Dsn, Outcome } from '../mail/delivery.js';
import type { Enhanced } from '../mail/reply.js';

export interface Classified { readonly outcome: Outcome; readonly dsn: Dsn }

/** The enhanced status of a reply ("550 5.1.1 ..."), or one derived from its basic code; the basic code's class wins. */
export function statusOf(reply: string): Enhanced {
  const m = /^([245])\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
  if (m) return `${m[1]}.${m[3]}.${m[4]}` as Enhanced;
  const c = reply.charAt(0);
  return (c === '2' || c === '5' ? `${c}.0.0` : '4.0.0') as Enhanced;
}

/** A multi-line reply as one line, the way Postfix logs it. */
export function oneLine(reply: string): string {
  const lines = reply.split(/\r?\n/).filter(Boolean);
  return lines.map((l, i) => (i === 0 ? l : l.replace(/^\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3} )?/, ''))).join(' ').trim();
}

/** What an upstream said, as a Dsn: "host mx[1.2.3.4] said: 550 5.1.1 ... (in reply to RCPT TO command)". */
export function fromReply(reply: string, hostLabel: string, command: string): Classified {
  const text = oneLine(reply);
  const status = statusOf(text);
  const outcome: Outcome = status.startsWith('5') ? 'bounced' : status.startsWith('2') ? 'sent' : 'deferred';
  return { outcome, dsn: { status, reason: `host ${hostLabel} said: ${text} (in reply to ${command} command)`, diagnostic: text, remoteMta: hostLabel.replace(/\[.*$/, '') } };
}

export function deferred(status: Enhanced, reason: string, remoteMta?: string): Classified {
  return { outcome: 'deferred', dsn: { status, reason, ...(remoteMta ? { remoteMta } : {}) } };
}

export function bounced(status: Enhanced, reason: string): Classified {
  return { outcome: 'bounced', dsn: { status, reason } };
}

/** Node's certificate errors in plain words: what failed and what to do. */
export function explainTls(message: string, hostLabel: string): string {
  // OpenSSL messages carry newlines and library prefixes: one log line, one plain sentence
  const m = message.replace(/^Error initiating TLS - /, '').replace(/\s*\n\s*/g, ' ').trim();
  if (/certificate has expired/i.test(m)) return `the certificate of ${hostLabel} has expired (${m}); the upstream must renew it, or set tls = "encrypt" to skip verification`;
  if (/not yet valid/i.test(m)) return `the certificate of ${hostLabel} is not valid yet (${m}); check both clocks`;
  if (/self[- ]signed certificate in certificate chain/i.test(m)) return `the certificate chain of ${hostLabel} ends in a self-signed CA that is not trusted (${m}); add that CA as ca_file, or set tls = "encrypt"`;
  if (/self[- ]signed/i.test(m)) return `the certificate of ${hostLabel} is self-signed (${m}); add it as ca_file, or set tls = "encrypt" to skip verification`;
  if (/altnames|does not match/i.test(m)) return `the certificate of ${hostLabel} is for other names: ${m}; use a url with one of those names, or set tls = "encrypt"`;
  if (/unable to (get local issuer|verify the first)/i.test(m)) return `the certificate of ${hostLabel} is not signed by a trusted CA (${m}); set ca_file to the CA that signed it`;
  // "packet length too long" / "wrong version number" with smtps://: the server greeted in plaintext
  if (/packet length too long|http request|wrong version number/i.test(m)) return `TLS handshake with ${hostLabel} failed: the server does not speak TLS from the first byte on this port (${m}); if it is a STARTTLS port (587, 25) use smtp://, smtps:// is for port 465`;
  if (/unsupported protocol|no protocols available|protocol version/i.test(m)) return `TLS handshake with ${hostLabel} failed: no common TLS version (${m}); the upstream may need tls_min_version lowered, or it does not speak TLS on this port (smtps:// vs smtp://)`;
  return `TLS handshake with ${hostLabel} failed: ${m}`;
}

const NET: Record<string, string> = {
  ECONNREFUSED: 'Connection refused', EHOSTUNREACH: 'No route to host', ENETUNREACH: 'Network is unreachable',
  ECONNRESET: 'Connection reset by peer', ETIMEDOUT: 'Connection timed out', EADDRNOTAVAIL: 'Cannot assign requested address',
};

interface NodemailerError extends Error { code?: string; originalCode?: string; response?: string; responseCode?: number; command?: string }

/**
 * A failure while connecting and greeting (before any mail command): the
 * whole attempt to this peer failed. `nextPeer` says whether another MX or
 * address could do better (connection and TLS problems) or not (AUTH).
 */
export function classifyConnectError(e: unknown, hostLabel: string, port: number): Classified & { nextPeer: boolean } {
  const err = e as NodemailerError;
  const code = err.code ?? '';
  if (err.response && err.command && err.command !== 'CONN' && code !== 'ETLS') {
    const c = fromReply(err.response, hostLabel, err.command === 'EHLO' ? 'EHLO' : err.command);
    return { ...c, outcome: c.outcome === 'sent' ? 'deferred' : c.outcome, nextPeer: true };
  }
  if (code === 'ETLS' || /certificate|TLS|SSL/i.test(err.message) && code !== 'EAUTH') {
    if (err.command === 'STARTTLS' && err.response) {
      return { ...deferred('4.7.4', `TLS is required, but host ${hostLabel} did not start TLS: ${oneLine(err.response)}`), nextPeer: true };
    }
    return { ...deferred('4.7.5', explainTls(err.message, hostLabel)), nextPeer: true };
  }
  if (code === 'ETIMEDOUT' || /timeout/i.test(err.message)) {
    const what = /greeting/i.test(err.message) ? 'while receiving the initial server greeting' : err.command === 'CONN' || !err.command ? 'while connecting' : `after ${err.command}`;
    return { ...deferred('4.4.2', `conversation with ${hostLabel} timed out ${what}`), nextPeer: true };
  }
  if (err.response && /^421/.test(err.response)) {
    return { ...deferred('4.4.2', `host ${hostLabel} refused to talk to me: ${oneLine(err.response)}`), nextPeer: true };
  }
  // nodemailer replaces a system error's code with its own and keeps the system one as originalCode
  const netText = NET[err.originalCode ?? ''] ?? NET[code];
  if (netText) return { ...deferred('4.4.1', `connect to ${hostLabel}:${port}: ${netText}`), nextPeer: true };
  if (/closed|ended|reset|socket/i.test(err.message)) return { ...deferred('4.4.2', `lost connection with ${hostLabel} while connecting: ${err.message}`), nextPeer: true };
  return { ...deferred('4.4.1', `connect to ${hostLabel}:${port}: ${err.message}`), nextPeer: true };
}

/** A failure after MAIL FROM was sent: a reply to a command, or the connection lost mid-transaction. */
export function classifySendError(e: unknown, hostLabel: string, afterData: boolean): Classified {
  const err = e as NodemailerError;
  if (err.response && err.command && err.command !== 'CONN' && err.command !== 'API') {
    return fromReply(err.response, hostLabel, err.command === 'DATA' && afterData ? 'end of DATA' : err.command);
  }
  if (err.code === 'EMESSAGE' && /larger than allowed/.test(err.message)) {
    return bounced('5.3.4', `message size exceeds the limit of ${hostLabel}: ${err.message}`);
  }
  const when = afterData ? 'while sending end of data -- message may be sent more than once' : 'while sending the envelope';
  if (err.code === 'ETIMEDOUT' || /timeout/i.test(err.message)) return deferred('4.4.2', `conversation with ${hostLabel} timed out ${when}`);
  return deferred('4.4.2', `lost connection with ${hostLabel} ${when}`);
}
