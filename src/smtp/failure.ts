// One outbound failure as a value: where in the dialogue it happened, what the upstream
// replied (every line), what kind of trouble it is, its enhanced status and the words for
// the log. Only classify.ts builds it; everything that decides something about a failure
// (bounce or retry, fall back to plaintext, slow down, suspend the destination, say which
// credentials were used) is a pure function of it below, not a reading of the log text.
import type { Dsn, Outcome } from '../mail/delivery.js';
import type { Enhanced } from '../mail/reply.js';
import type { OutboundTls } from '../config/types.js';
import { replyMatches, type ReplyRule } from '../config/presets.js';
import { isThrottleReply } from './slow-down.js';

export type Stage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'tls' | 'auth' | 'mail' | 'rcpt' | 'data';
export type FailureKind = 'network' | 'tls' | 'auth' | 'protocol' | 'policy';

/** An upstream's reply: "550-5.7.1 a" "550 5.7.1 b" is { code: 550, enhanced: '5.7.1', lines: [both, as received] }. */
export interface UpstreamReply { readonly code: number; readonly enhanced?: Enhanced; readonly lines: readonly string[] }

export interface Failure {
  readonly stage: Stage;
  readonly reply?: UpstreamReply;
  readonly kind: FailureKind;
  readonly status: Enhanced;
  /** A retry may succeed: the mail is deferred, not bounced. */
  readonly temporary: boolean;
  /** What the log line says in brackets, in Postfix's shape ("connect to h[a]:p: Connection refused; ..."). */
  readonly text: string;
  /** What to change, as probe says it. */
  readonly fix?: string;
  /** The host that answered, for the DSN's Remote-MTA. */
  readonly remoteMta?: string;
}

/** A reply as nodemailer hands it over (lines joined with \n), or undefined when it is no reply. */
export function parseReply(response: string | undefined): UpstreamReply | undefined {
  const lines = (response ?? '').split(/\r?\n/).map((l) => l.trimEnd()).filter(Boolean);
  const m = /^([2-5]\d\d)(?:[ -]|$)(?:([245])\.(\d{1,3})\.(\d{1,3})\b)?/.exec(lines[0] ?? '');
  if (!m) return undefined;
  // the basic code's class wins over a contradicting enhanced code (RFC 3463 §2)
  const enhanced = m[2] ? `${m[1]!.charAt(0)}.${m[3]}.${m[4]}` as Enhanced : undefined;
  return { code: Number(m[1]), ...(enhanced ? { enhanced } : {}), lines };
}

/** Every line, joined with spaces, as Postfix logs a multi-line reply. */
export function replyLine(r: UpstreamReply): string {
  return r.lines.join(' ');
}

/** The reply's enhanced status, or one derived from its basic code. */
export function replyStatus(r: UpstreamReply): Enhanced {
  return r.enhanced ?? `${r.code >= 500 ? 5 : r.code >= 400 ? 4 : 2}.0.0` as Enhanced;
}

/** The log's and the bounce's reason: the text, then the fix. */
export function reasonOf(f: Failure): string {
  return f.fix ? `${f.text}; ${f.fix}` : f.text;
}

/** Deferred or bounced: only a permanent failure bounces. */
export function outcomeOf(f: Failure): Outcome {
  return f.temporary ? 'deferred' : 'bounced';
}

export function dsnOf(f: Failure): Dsn {
  return { status: f.status, reason: reasonOf(f), ...(f.reply ? { diagnostic: replyLine(f.reply) } : {}), ...(f.remoteMta ? { remoteMta: f.remoteMta } : {}) };
}

/** tls = "may" is opportunistic: a failed TLS handshake is tried again in plaintext (Postfix); no other level ever is. */
export function fallsBackToPlaintext(f: Failure, level: OutboundTls): boolean {
  return level === 'may' && f.kind === 'tls' && f.stage === 'tls';
}

/**
 * Another address or URL of the destination may do better after a connection, TLS or
 * greeting problem; not after a login failure (every URL shares the credentials).
 */
export function triesNextPeer(f: Failure): boolean {
  return f.stage !== 'auth';
}

/**
 * An upstream's "slow down" (isThrottleReply), counted only in reply to the greeting, EHLO, AUTH or
 * MAIL FROM (later ones, such as RCPT greylisting, concern one message); or, at any stage, a reply
 * the route's preset documents as one (`rules`: Gmail's 4.7.x at DATA).
 */
export function slowsDown(f: Failure, rules: readonly ReplyRule[] = []): boolean {
  if (!f.reply) return false;
  const line = replyLine(f.reply);
  return replyMatches(line, rules) || (['greeting', 'ehlo', 'auth', 'mail'].includes(f.stage) && isThrottleReply(line));
}

/** A destination that could not be reached defers its queued mail for a while; one that asked us to slow down is alive. */
export function marksDestinationDead(f: Failure, rules: readonly ReplyRule[] = []): boolean {
  return !slowsDown(f, rules);
}

/** "530 5.7.0 Authentication required", Microsoft's "5.7.57 Client not authenticated": a login is wanted (RFC 4954 §6). */
const WANTS_LOGIN = /^530\b|authenticat(ion|e) (is )?required|not authenticated|must (authenticate|log ?in)/i;

/** The credentials (or their absence) can be the cause: the log line then says how smarthost logged in. */
export function credentialsMayBeCause(f: Failure): boolean {
  return f.kind === 'auth' || (f.reply !== undefined && WANTS_LOGIN.test(replyLine(f.reply)));
}

export function wantsLogin(reply: string): boolean {
  return WANTS_LOGIN.test(reply);
}
