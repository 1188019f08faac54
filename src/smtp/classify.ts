// Every outbound failure becomes a Failure (failure.ts) here, and only here: nodemailer's
// error code and command, the upstream's reply, a lookup's result and a login's refusal give
// the stage, the kind, the enhanced status and the log's words in Postfix's shape ("host
// x[ip] said: ... (in reply to RCPT TO command)", "connect to x[ip]:25: Connection refused")
// followed by the cause and fix from wording.ts, the table probe uses too.
// Unknown means temporary: a wrong guess must never bounce mail.
import type { Dsn } from '../mail/delivery.js';
import type { Enhanced } from '../mail/reply.js';
import type { OutboundTls } from '../config/types.js';
import type { OAuthError, TokenProblem } from '../oauth/token-source.js';
import { parseReply, replyLine, replyStatus, type Failure, type FailureKind, type Stage, type UpstreamReply } from './failure.js';
import { isThrottleReply } from './slow-down.js';
import { connectAdvice, greetingRefusedAdvice, NET_TEXT, noGreetingAdvice, refusedAdvice, starttlsMissingAdvice, tlsAdvice, tlsOnPlainPortAdvice, type Advice } from './wording.js';

/** Where a failure happened and which settings a fix names. */
export interface Where {
  /** "host[ip]" */
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly tls: OutboundTls;
  /** Where the port and the timeout are set: "url" and "timeout of [relay]", or "[mx] port" and "[mx] timeout". */
  readonly portKnob: string;
  readonly timeoutKnob: string;
}

interface NodemailerError extends Error {
  code?: string; originalCode?: string; response?: string; responseCode?: number; command?: string;
  /** nodemailer's kind of timeout: CONNECT_TIMEOUT, GREETING_TIMEOUT, SOCKET_TIMEOUT. */
  timeoutType?: string;
  /** Set by session.ts: whether any reply had come before the error. */
  greeted?: boolean;
}

const STAGE_OF: Record<string, Stage> = {
  CONN: 'greeting', EHLO: 'ehlo', HELO: 'ehlo', LHLO: 'ehlo', STARTTLS: 'starttls', AUTH: 'auth', 'AUTH PLAIN': 'auth', 'AUTH LOGIN': 'auth',
  'AUTH CRAM-MD5': 'auth', 'AUTH XOAUTH2': 'auth', 'MAIL FROM': 'mail', 'RCPT TO': 'rcpt', DATA: 'data', 'end of DATA': 'data',
};

const SLOW_DOWN: Advice = { diagnosis: 'the server asks for fewer connections', fix: 'smarthost slows down this route and tries again' };

/** The one constructor: a 5xx status is permanent, anything else temporary; the advice's cause follows the Postfix text. */
function make(stage: Stage, kind: FailureKind, status: Enhanced, text: string, advice?: Advice | { fix: string }, reply?: UpstreamReply, remoteMta?: string): Failure {
  const cause = advice && 'diagnosis' in advice ? `; ${advice.diagnosis}` : '';
  return {
    stage, kind, status, temporary: !status.startsWith('5'), text: text + cause,
    ...(advice ? { fix: advice.fix } : {}), ...(reply ? { reply } : {}), ...(remoteMta ? { remoteMta } : {}),
  };
}

/** What an upstream said: "host mx[1.2.3.4] said: 550 5.1.1 ... (in reply to RCPT TO command)", every line kept. */
export function replied(response: string, label: string, command: string): Failure {
  const reply = parseReply(response) ?? { code: 451, lines: [response.trim() || '(no reply)'] };
  const status = replyStatus(reply);
  const kind: FailureKind = /^[45]\.7\./.test(status) ? 'policy' : 'protocol';
  return make(STAGE_OF[command] ?? 'data', kind, status, `host ${label} said: ${replyLine(reply)} (in reply to ${command} command)`, undefined, reply, label.replace(/\[.*$/, ''));
}

/** An accepted message: Postfix logs "status=sent (250 ...)". */
export function sentDsn(response: string, label: string): Dsn {
  const reply = parseReply(response);
  const text = reply ? replyLine(reply) : response.trim();
  return { status: reply ? replyStatus(reply) : '2.0.0', reason: text, diagnostic: text, remoteMta: label.replace(/\[.*$/, '') };
}

/** A failure while connecting, greeting, EHLO or STARTTLS: the whole attempt to this peer failed. */
export function connectFailure(e: unknown, w: Where): Failure {
  const err = e as NodemailerError;
  const code = err.code ?? '';
  const reply = parseReply(err.response);
  if (reply && err.command && err.command !== 'CONN' && code !== 'ETLS') {
    return replied(err.response!, w.label, err.command);
  }
  if (code === 'ETLS' || (/certificate|TLS|SSL/i.test(err.message) && code !== 'EAUTH')) {
    if (err.command === 'STARTTLS' && reply) {
      return make('starttls', 'tls', '4.7.4', `TLS is required, but host ${w.label} did not start TLS: ${replyLine(reply)}`, { fix: starttlsMissingAdvice({ host: w.host, tls: w.tls }).fix }, reply);
    }
    const a = tlsAdvice(err.message, w.label);
    return make('tls', 'tls', '4.7.5', a.diagnosis, { fix: a.fix });
  }
  if (code === 'ETIMEDOUT' || /timeout/i.test(err.message)) return timedOut(err, w);
  if (reply && err.command === 'CONN') {
    const advice = isThrottleReply(replyLine(reply)) ? SLOW_DOWN : { fix: greetingRefusedAdvice().fix };
    return make('greeting', 'protocol', reply.code === 421 ? '4.4.2' : '4.4.1', `host ${w.label} refused to talk to me: ${replyLine(reply)}`, advice, reply);
  }
  // nodemailer replaces a system error's code with its own and keeps the system one as originalCode
  const sys = NET_TEXT[err.originalCode ?? ''] ? err.originalCode! : NET_TEXT[code] ? code : undefined;
  const where = `${w.label}:${w.port}`;
  if (sys) {
    const advice = sys === 'ECONNREFUSED' ? refusedAdvice(w.port, w.portKnob)
      : connectAdvice({ where, host: w.host, port: w.port, code: sys, timeoutMs: w.timeoutMs, portKnob: w.portKnob });
    return make('connect', 'network', '4.4.1', `connect to ${where}: ${NET_TEXT[sys]}`, advice);
  }
  if (/closed|ended|reset|socket/i.test(err.message)) return make('greeting', 'network', '4.4.2', `lost connection with ${w.label} while connecting (${err.message})`);
  return make('connect', 'network', '4.4.1', `connect to ${where}: ${err.message}`);
}

function timedOut(err: NodemailerError, w: Where): Failure {
  // the idle-socket timeout can fire before the greeting timer set at the same moment
  if (err.timeoutType === 'GREETING_TIMEOUT' || /greeting/i.test(err.message) || (err.greeted === false && err.timeoutType === 'SOCKET_TIMEOUT')) return noGreeting(w, undefined);
  if (err.command === 'CONN' || !err.command) {
    const where = `${w.label}:${w.port}`;
    return make('connect', 'network', '4.4.2', `connect to ${where}: Connection timed out`,
      connectAdvice({ where, host: w.host, port: w.port, code: 'ETIMEDOUT', timeoutMs: Math.min(30_000, w.timeoutMs), portKnob: w.portKnob })); // policy.ts connectionTimeout
  }
  return make(STAGE_OF[err.command] ?? 'ehlo', 'network', '4.4.2', `conversation with ${w.label} timed out after ${err.command}`);
}

/** No greeting in time; `expectsTls`: a TLS handshake on a new connection succeeded (smtp:// to an smtps:// port), failed, or was not tried. */
export function noGreeting(w: Where, expectsTls: boolean | undefined): Failure {
  return make('greeting', 'network', '4.4.2', `conversation with ${w.label} timed out while receiving the initial server greeting`,
    noGreetingAdvice({ host: w.host, port: w.port, timeoutMs: w.timeoutMs, expectsTls, timeoutKnob: w.timeoutKnob }));
}

/** smtps:// to a port that greeted in plaintext on a new connection. */
export function tlsOnPlainPort(w: Where, greeting: string): Failure {
  const a = tlsOnPlainPortAdvice({ label: w.label, host: w.host, port: w.port, reply: greeting });
  return make('tls', 'tls', '4.7.5', a.diagnosis, { fix: a.fix });
}

/** A failure after MAIL FROM was sent: a reply to a command, or the connection lost mid-transaction. */
export function sendFailure(e: unknown, label: string, afterData: boolean): Failure {
  const err = e as NodemailerError;
  if (err.response && err.command && err.command !== 'CONN' && err.command !== 'API') {
    return replied(err.response, label, err.command === 'DATA' && afterData ? 'end of DATA' : err.command);
  }
  if (err.code === 'EMESSAGE' && /larger than allowed/.test(err.message)) {
    return make('mail', 'policy', '5.3.4', `message size exceeds the limit of ${label} (${err.message})`);
  }
  const when = afterData ? 'while sending end of data -- message may be sent more than once' : 'while sending the envelope';
  const stage: Stage = afterData ? 'data' : 'mail';
  if (err.code === 'ETIMEDOUT' || /timeout/i.test(err.message)) return make(stage, 'network', '4.4.2', `conversation with ${label} timed out ${when}`);
  return make(stage, 'network', '4.4.2', `lost connection with ${label} ${when}`);
}

export type LoginProblem = 'refused' | 'unreadable' | 'not-encrypted' | 'no-mechanism';

/** A login that failed or was not attempted: the mail waits, credentials are the cause. */
export function loginFailure(problem: LoginProblem, text: string, advice?: Advice | { fix: string }, response?: string): Failure {
  return make('auth', 'auth', problem === 'unreadable' ? '4.3.5' : '4.7.0', text, advice, parseReply(response));
}

const TOKEN_STATUS: Record<TokenProblem, Enhanced> = { network: '4.4.1', provider: '4.3.0', refused: '4.7.0', unreadable: '4.3.5' };

/** auth = "oauth2" and no access token: the token source's message says what failed and what to do. */
export function tokenFailure(e: OAuthError): Failure {
  return make('auth', e.problem === 'network' || e.problem === 'provider' ? 'network' : 'auth', TOKEN_STATUS[e.problem], e.message);
}

/** A destination with no address to try: null MX 5.1.10 (RFC 7505 §4.2), no such domain 5.1.2, DNS trouble 4.4.3/4.4.4 (RFC 3463). */
export function lookupFailure(problem: 'nullMx' | 'notFound' | 'tempfail' | 'noHost' | 'noAddress', text: string): Failure {
  const status: Enhanced = problem === 'nullMx' ? '5.1.10' : problem === 'notFound' ? '5.1.2' : problem === 'noHost' ? '4.4.4' : '4.4.3';
  return make('connect', 'network', status, text);
}

/** MTA-STS refused every MX host, or a TLS failure under an MTA-STS policy in mode enforce: deferred until the policy changes. */
export function policyFailure(text: string, base?: Failure): Failure {
  if (!base) return make('connect', 'policy', '4.7.5', text);
  const { fix: _advice, ...rest } = base; // the advice for the TLS problem (ca_file, tls = "encrypt") does not apply under a policy
  return { ...rest, kind: 'policy', text };
}

/** A UTF-8 address to a server without SMTPUTF8 (RFC 6531 §3.4): Postfix bounces (smtp_proto.c), and so do we. */
export function smtputf8Missing(label: string): Failure {
  return make('mail', 'policy', '5.6.7', `SMTPUTF8 is required, but was not offered by host ${label}`);
}

/** The destination is at its rate or connection limit and too many deliveries already wait (4.4.5, RFC 3463 "system congestion"). */
export function postponed(text: string): Failure {
  return make('connect', 'policy', '4.4.5', text);
}

/** The shared store of cluster-wide limits cannot be asked: nothing is sent unchecked (4.3.0, "mail system" trouble). */
export function limitsUnavailable(text: string): Failure {
  return make('connect', 'network', '4.3.0', text);
}

/** A 5xx the route's provider documents as a limit that passes (a daily quota): deferred as 4.x.x, not bounced. */
export function limitThatPasses(f: Failure): Failure {
  const { fix: _refusal, ...rest } = f; // the advice for a refusal (read the reply, change the sender) does not apply
  return { ...rest, status: `4${f.status.slice(1)}` as Enhanced, temporary: true, text: `${f.text} (the provider documents this as a limit that passes: deferred, not bounced)` };
}
