// What one delivery attempt's results make of a message's state: each
// recipient sent, bounced (refused, or expired past queue.lifetime) or
// deferred with its next attempt; and who gets a notice (failure, success,
// delay); and the delivery log line. The queue manager spools the notices
// and saves the state.
import type { DsnRecipient } from '../bounce/dsn.js';
import type { QueueConfig } from '../config/types.js';
import type { RcptResult } from '../mail/delivery.js';
import type { Envelope, Recipient } from '../mail/envelope.js';
import type { Enhanced } from '../mail/reply.js';
import type { DeliveryState, RecipientState } from '../queue/spool.js';
import type { MailLog } from '../maillog/maillog.js';
import { expired, formatDelay, retryDelay } from './schedule.js';

/** A message the queue manager works on: its envelope and state, read from the spool for the attempt. */
export interface Work {
  readonly envelope: Envelope;
  state: DeliveryState;
  /** The envelope's recipients (NOTIFY, ORCPT) by address. */
  readonly rcpt: ReadonlyMap<string, Recipient>;
  /**
   * Shared store, new mail: it was leased to this node when committed, so an attempt
   * started before this time (epoch ms, well inside that lease) need not claim it.
   */
  readonly leasedUntil?: number;
}

export function work(envelope: Envelope, state: DeliveryState): Work {
  return { envelope, state, rcpt: new Map(envelope.recipients.map((r) => [r.address, r])) };
}

export interface Outcomes {
  readonly recipients: RecipientState[];
  readonly failed: DsnRecipient[];
  readonly relayed: DsnRecipient[];
  /** Some recipient bounced because the message is older than queue.lifetime. */
  readonly anyExpired: boolean;
}

export function applyResults(w: Work, results: readonly RcptResult[], queue: QueueConfig, now: number, rand: () => number): Outcomes {
  const isExpired = expired(Date.parse(w.envelope.arrived), queue.lifetimeMs, now);
  const byRcpt = new Map(results.map((r) => [r.rcpt, r]));
  const failed: DsnRecipient[] = [];
  const relayed: DsnRecipient[] = [];
  const notify = (address: string, what: string) => {
    const n = w.rcpt.get(address)?.notify;
    return n === undefined ? what !== 'SUCCESS' : n.includes(what);
  };
  let anyExpired = false;
  const recipients = w.state.recipients.map((r): RecipientState => {
    const res = byRcpt.get(r.address);
    if (!res) return r;
    const attempts = r.attempts + 1;
    const base = { address: r.address, attempts, lastReply: res.dsn.reason, dsn: res.dsn.status };
    const entry: DsnRecipient = {
      address: r.address, action: 'failed', status: res.dsn.status, reason: res.dsn.reason, lastAttempt: new Date(now),
      ...(res.dsn.diagnostic ? { diagnostic: res.dsn.diagnostic } : {}), ...(res.dsn.remoteMta ? { remoteMta: res.dsn.remoteMta } : {}),
      ...orcptField(w, r.address),
    };
    if (res.outcome === 'sent') {
      if (notify(r.address, 'SUCCESS') && !res.dsnPassed) relayed.push({ ...entry, action: 'relayed' });
      return { ...base, state: 'sent' };
    }
    if (res.outcome === 'bounced' || isExpired) {
      if (res.outcome !== 'bounced') anyExpired = true;
      if (notify(r.address, 'FAILURE')) failed.push(entry);
      return { ...base, state: 'bounced' };
    }
    // a quota that is used up says when it frees a place (notBefore): no earlier retry
    const backoff = now + retryDelay(attempts, queue.retryMinMs, queue.retryMaxMs, rand);
    return { ...base, state: 'deferred', nextAttempt: new Date(Math.max(backoff, res.notBefore ?? 0)).toISOString() };
  });
  return { recipients, failed, relayed, anyExpired };
}

/** The recipients owed a delay notice now (queue.delay_warning passed, none sent yet, not a bounce). */
export function delayWarning(w: Work, state: DeliveryState, queue: QueueConfig, now: number): DsnRecipient[] {
  const { envelope } = w;
  const after = queue.delayWarningMs;
  if (!after || state.warned || envelope.sender === '' || now - Date.parse(envelope.arrived) < after) return [];
  const until = new Date(Date.parse(envelope.arrived) + queue.lifetimeMs);
  return state.recipients
    .filter((r) => r.state === 'deferred')
    .filter((r) => { const n = w.rcpt.get(r.address)?.notify; return n === undefined || n.includes('DELAY'); })
    .map((r) => ({
      address: r.address, action: 'delayed' as const, status: (r.dsn ?? '4.0.0') as Enhanced, reason: r.lastReply ?? 'delivery temporarily deferred',
      willRetryUntil: until, lastAttempt: new Date(now), ...orcptField(w, r.address),
    }));
}

function orcptField(w: Work, address: string): { orcpt?: string } {
  const orcpt = w.rcpt.get(address)?.orcpt;
  return orcpt ? { orcpt } : {};
}

/** The delivery log line of one recipient's result, with Postfix's delays=a/b/c/d. */
export function logDelivery(log: MailLog, id: string, r: RcptResult, t: { arrived: number; seen: number; now: number }): void {
  const a = Math.max(0, t.seen - t.arrived);
  const c = r.connectMs;
  const d = r.transmitMs;
  const total = Math.max(0, t.now - t.arrived);
  const b = Math.max(0, total - a - c - d);
  log.delivery(id, r.relay === 'local' ? 'local' : 'smtp', {
    to: r.rcpt, relay: r.relay, delay: formatDelay(total), delays: [formatDelay(a), formatDelay(b), formatDelay(c), formatDelay(d)],
    dsn: r.dsn.status, status: r.outcome, reason: r.dsn.reason,
  });
}
