// What the PostgreSQL store's rows become: the queue entry of a listing or a claim, and the
// summary that recovery and the due-mail poll schedule from. Shared by pg-spool.ts and pg-shared.ts.
import type { Envelope } from '../mail/envelope.js';
import { initialState, type DeliveryState, type QueueEntry, type Recovered } from './spool.js';

export interface EntryRow {
  id: string;
  envelope: Envelope;
  state: DeliveryState | null;
  held: boolean;
  lease_node: string | null;
  lease_until: Date | null;
}

export function entryOf(r: EntryRow): QueueEntry {
  const state = r.state ?? initialState(r.envelope);
  const live = r.lease_node && r.lease_until ? { lease: { node: r.lease_node, until: r.lease_until.toISOString() } } : {};
  return { envelope: r.envelope, state: { ...state, held: r.held }, ...live };
}

export interface SummaryRow { id: string; arrived_ms: number; size: number; held: boolean; due_ms: number | null; has_state: boolean }

export function rowToRecovered(r: SummaryRow): Recovered {
  return { id: r.id, arrived: r.arrived_ms, size: r.size, held: r.held, due: r.due_ms ?? undefined, hasState: r.has_state };
}

/** What recovery and the due-mail poll read of a message: enough to schedule it. */
export const SUMMARY = `id, (extract(epoch FROM arrived) * 1000)::float8 AS arrived_ms, size::float8 AS size, held,
  CASE WHEN due IS NULL THEN NULL WHEN due = '-infinity' THEN 0 ELSE (extract(epoch FROM due) * 1000)::float8 END AS due_ms,
  state IS NOT NULL AS has_state`;

