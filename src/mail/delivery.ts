// The outcome of one delivery attempt for one recipient, as every transport
// (smtp, local) reports it and the queue manager consumes it. Plain values.
import type { Readable } from 'node:stream';
import type { Recipient } from './envelope.js';
import type { Enhanced } from './reply.js';

export type Outcome = 'sent' | 'deferred' | 'bounced';

/** Why a recipient ended the way it did, in Postfix's dsn.h terms. */
export interface Dsn {
  readonly status: Enhanced;        // e.g. 2.0.0, 4.4.1, 5.1.1
  /** What the log line and the bounce say in brackets: the upstream reply, or our plain-language reason. */
  readonly reason: string;
  /** The upstream's own reply when there was one ("550 5.1.1 <x>: User unknown"), for Diagnostic-Code. */
  readonly diagnostic?: string;
  /** The host that answered, for Remote-MTA. */
  readonly remoteMta?: string;
}

export interface RcptResult {
  readonly rcpt: string;
  readonly outcome: Outcome;
  readonly dsn: Dsn;
  /** "host[ip]:port", or "none" when no connection was made. */
  readonly relay: string;
  /** Milliseconds spent on connection setup (DNS, connect, greeting, EHLO, TLS, AUTH) and on transmission. */
  readonly connectMs: number;
  readonly transmitMs: number;
  /** True when the upstream offered DSN and took NOTIFY/ORCPT: it, not we, reports success. */
  readonly dsnPassed?: boolean;
  /** Deferred: not worth trying before this time (ms since the epoch), e.g. when a route quota frees up. */
  readonly notBefore?: number;
}

export function sent(rcpt: string, dsn: Dsn, relay: string, connectMs: number, transmitMs: number, dsnPassed = false): RcptResult {
  return { rcpt, outcome: 'sent', dsn, relay, connectMs, transmitMs, dsnPassed };
}

/** Every recipient of an attempt gets the same outcome (connection, TLS or AUTH failure). */
export function allRecipients(rcpts: readonly string[], outcome: Outcome, dsn: Dsn, relay: string, connectMs: number, transmitMs = 0): RcptResult[] {
  return rcpts.map((rcpt) => ({ rcpt, outcome, dsn, relay, connectMs, transmitMs }));
}

/** 2xx sent, 4xx deferred, 5xx bounced (RFC 5321 §4.2.1); an enhanced code's class wins over a contradicting basic code. */
export function outcomeOf(status: Enhanced): Outcome {
  return status.startsWith('2') ? 'sent' : status.startsWith('5') ? 'bounced' : 'deferred';
}

/** What one delivery attempt carries to a transport. The body is the stored message (CRLF line ends). */
export interface OutgoingMessage {
  readonly id: string;
  readonly sender: string;
  readonly recipients: readonly Recipient[];
  readonly size: number;
  readonly eightBit: boolean;
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
  body(): Readable;
  /** The bytes of body(), when the spool has them in memory (queue/spool.ts inMemory). */
  readonly bytes?: Buffer;
}
