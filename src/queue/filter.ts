// Selecting queued messages by sender, recipient, state and age, and their JSON
// shape: one definition for `smarthost queue` and the HTTP API, so both show
// and select the same things.
import type { QueueEntry } from './spool.js';

export const STATES = ['queued', 'deferred', 'held'] as const;
type State = typeof STATES[number];

export interface QueueFilter {
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly state: readonly string[];
  /** Only messages that arrived more than this long ago. */
  readonly olderThanMs?: number;
}

/** A filter value that cannot select anything; `option` names the filter. */
export class FilterError extends Error {
  constructor(readonly option: string, message: string) { super(message); this.name = 'FilterError'; }
}

/** One predicate for all the filters (all must match; a repeated filter matches any of its values); undefined: no filter. */
export function entryFilter(f: QueueFilter | undefined, now = Date.now()): ((e: QueueEntry) => boolean) | undefined {
  if (!f || (!f.from.length && !f.to.length && !f.state.length && f.olderThanMs === undefined)) return undefined;
  const states = f.state.flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of states) if (!(STATES as readonly string[]).includes(s)) throw new FilterError('state', `${s}: not a state; use ${STATES.join(', ')}`);
  const age = f.olderThanMs;
  const pending = (r: QueueEntry['state']['recipients'][number]) => r.state === 'queued' || r.state === 'deferred';
  return (e) => {
    if (f.from.length && !f.from.some((p) => addressMatches(e.envelope.sender, p))) return false;
    if (age !== undefined && now - Date.parse(e.envelope.arrived) <= age) return false;
    if (states.length && e.state.held && !states.includes('held')) return false;
    return e.state.recipients.some((r) => pending(r) &&
      (!f.to.length || f.to.some((p) => addressMatches(r.address, p))) &&
      (!states.length || e.state.held || states.includes(r.state as State)));
  };
}

/** "a@b" exactly, "@b" the domain, "<>" the null sender, anything else a part of the address (case-insensitive). */
function addressMatches(address: string, pattern: string): boolean {
  const a = address.toLowerCase();
  const p = pattern.trim().toLowerCase();
  if (p === '<>' || p === '') return a === '';
  if (p.startsWith('@')) return a.endsWith(p);
  if (p.includes('@')) return a === p.replace(/^<(.*)>$/, '$1');
  return a.includes(p);
}

/** The `queue --json` shape of one message. */
export function toJson(e: QueueEntry) {
  return {
    id: e.envelope.id, from: e.envelope.sender, size: e.envelope.size, arrived: e.envelope.arrived, held: e.state.held,
    ...(e.lease ? { lease: { node: e.lease.node, until: e.lease.until } } : {}), // shared store: the node delivering it now
    recipients: e.state.recipients.map((r) => ({
      address: r.address, state: r.state, attempts: r.attempts, next_attempt: r.nextAttempt ?? null, last_reply: r.lastReply ?? null,
    })),
  };
}
