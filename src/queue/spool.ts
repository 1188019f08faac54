// The spool interface: accepted messages live here until delivered. A
// message is either not in the spool at all or in it whole and fsynced; the
// 250 reply waits for commit(). Delivery keeps per-recipient state beside
// each message. Two stores implement it: FsSpool (files under data_dir, one
// node) and PgSpool (a PostgreSQL database that several nodes share, with
// leases: see `shared`). Every process opens its store with open-spool.ts.
import type { Readable } from 'node:stream';
import type { Envelope } from '../mail/envelope.js';

export type RecipientStatus = 'queued' | 'deferred' | 'sent' | 'bounced';

export interface RecipientState {
  readonly address: string;
  readonly state: RecipientStatus;
  readonly attempts: number;
  readonly nextAttempt?: string;   // ISO 8601
  readonly lastReply?: string;
  /** Enhanced status of the last attempt, e.g. 4.4.1. */
  readonly dsn?: string;
}

export interface DeliveryState {
  readonly held: boolean;
  /** A delay warning was sent (at most one per message, like Postfix). */
  readonly warned?: boolean;
  readonly recipients: readonly RecipientState[];
}

export interface QueueEntry {
  readonly envelope: Envelope;
  readonly state: DeliveryState;
  /** Shared store: the node delivering it now, and until when its lease runs unless renewed. */
  readonly lease?: { readonly node: string; readonly until: string };
}

/** What intake knows when DATA starts; the size is known at commit. */
export type NewEnvelope = Omit<Envelope, 'size'>;

/** A message being received. Nothing is visible in the spool until commit() resolves. */
export interface Incoming {
  readonly id: string;
  /** Appends message bytes (the caller must not reuse the buffer); resolves when the spool can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Makes the message durable (file and directory fsynced); after this, 250 may be sent. */
  commit(): Promise<Envelope>;
  /** Discards everything written so far. Safe to call at any point, more than once. */
  abort(): Promise<void>;
}

/** What recovery tells the queue manager about each message it finds: enough to schedule it, not its envelope. */
export interface Recovered {
  readonly id: string;
  /** Epoch ms. */
  readonly arrived: number;
  readonly size: number;
  readonly held: boolean;
  /** Earliest next attempt of a recipient still to deliver (epoch ms; 0: now); undefined: none left (finished before a crash). */
  readonly due: number | undefined;
  /** A state file was found (remove() and get() can skip looking for one when not). */
  readonly hasState: boolean;
}

export interface RecoveryReport {
  readonly messages: number;
  /** Partial files of messages being received (never acknowledged) that were removed. */
  readonly discarded: number;
  readonly corrupt: number;
}

/** What a pass over the whole queue found: the messages read, and those that could not be read (after retries) with their errors. */
export interface QueueListing {
  readonly entries: QueueEntry[];
  readonly unreadable: Array<{ readonly id: string; readonly error: Error }>;
}

/** One message read, or one that could not be read (after retries) with its error. */
export type Scanned =
  | { readonly entry: QueueEntry; readonly unreadable?: undefined }
  | { readonly entry?: undefined; readonly unreadable: { readonly id: string; readonly error: Error } };

/** The store cannot be reached (a database down or restarting): the client should hear 451 4.3.0 and try again. */
export class SpoolUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'SpoolUnavailableError'; }
}

/** Storage failures that the client should hear as 452 4.3.1 (disk full, quota, file too big). */
export class SpoolFullError extends Error {
  constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = 'SpoolFullError'; }
}

/** What a node learns when it claims a message on a shared store before an attempt. */
export type Claim =
  /** Leased to this node. `takeover`: the lease was another node's and had expired (it may have delivered some: a possible duplicate). */
  | { readonly kind: 'claimed'; readonly entry: QueueEntry; readonly takeover: boolean }
  /** Another node's lease runs until `until` (epoch ms). */
  | { readonly kind: 'busy'; readonly node: string; readonly until: number }
  | { readonly kind: 'held' }
  | { readonly kind: 'gone' };

/**
 * A store that several nodes share (PostgreSQL). A node claims a message (a lease, renewed while
 * the node lives) before each attempt, and ends the lease with the attempt's outcome; a lease
 * that expires makes the message due for any node. The file store has none: one node, and a
 * claim that would always succeed.
 */
export interface SharedQueue {
  readonly node: string;
  /** Leases the message to this node and reads it, unless it is held, gone, or another node's lease on it still runs. */
  claim(id: string): Promise<Claim>;
  /** Saves an attempt's outcome and ends this node's lease in one statement; false: the lease was lost meanwhile (not saved). */
  finish(id: string, state: DeliveryState): Promise<boolean>;
  /** Ends this node's lease without touching the state (the claimed message turned out not due yet). */
  release(id: string): Promise<void>;
  /** Messages due now with no running lease that `known` does not know, at most `limit`. */
  due(known: (id: string) => boolean, limit: number): Promise<Recovered[]>;
  /** Every message with something left to deliver that `known` does not know (for `queue flush` of ALL on this node). */
  pendingUnknown(known: (id: string) => boolean): Promise<Recovered[]>;
  /** `wake` is called when another node says there is work (LISTEN/NOTIFY), and by a poll in case a notification is lost. */
  onWake(wake: () => void): void;
  /** Lease takeovers (each a possible duplicate delivery: see README "Several relays on one queue") and outcomes not saved because the lease was lost. */
  readonly stats: { readonly takeovers: number; readonly lost: number };
  /** Messages by node holding their lease ('' for none) and state, with the oldest arrival: for metrics. */
  counts(): Promise<Array<{ node: string; state: 'active' | 'deferred' | 'held'; count: number; oldestMs: number }>>;
}

export interface Spool {
  /** Set by a store that several nodes share; then the queue manager claims each message before an attempt. */
  readonly shared?: SharedQueue | undefined;
  /**
   * Creates the layout if needed, discards what was never acknowledged, and tells `found` about
   * each message as it is read (the same id at most once). receive() and the rest may be used
   * while it runs: messages received meanwhile are not reported. Stops early after close().
   */
  recover(found?: (m: Recovered) => void): Promise<RecoveryReport>;
  receive(envelope: Omit<NewEnvelope, 'id'>): Promise<Incoming>;
  list(): Promise<QueueEntry[]>;
  /** Every message, oldest first, and those that could not be read: nothing is left out silently. */
  listAll(): Promise<QueueListing>;
  /** listAll() one message at a time, for a listing printed as it is read. */
  scan(): AsyncGenerator<Scanned>;
  /** `hasState: false` says no state was ever saved for it (every recipient queued: skips looking). */
  get(id: string, opts?: { hasState?: boolean }): Promise<QueueEntry | undefined>;
  /**
   * Ids of committed messages written before `before` (epoch ms) that `known` does not know, for
   * the daemon's minute rescan. A shared store has none: its nodes learn of such mail from it (`shared.onWake`).
   */
  unclaimed?(known: (id: string) => boolean, before: number): Promise<string[]>;
  /** The message bytes exactly as stored (CRLF line ends, Received header first). */
  open(id: string): Readable;
  /** The same bytes when the store keeps them in memory (a database store, for the daemon's new mail): the delivery thread gets them with the message. */
  inMemory?(id: string): Buffer | undefined;
  saveState(id: string, state: DeliveryState): Promise<void>;
  /** `hasState: false` says no state was ever saved for it (skips looking for one); `size`: its envelope's. */
  remove(id: string, opts?: { hasState?: boolean; size?: number }): Promise<boolean>;
  /** Releases what the spool holds open; a promise when there is more to finish. */
  close(): void | Promise<void>;
}

export function initialState(envelope: Envelope): DeliveryState {
  return {
    held: false,
    recipients: envelope.recipients.map((r) => ({ address: r.address, state: 'queued', attempts: 0 })),
  };
}

const PENDING = new Set(['queued', 'deferred']);

/** Whether a recipient is still to be delivered. */
export function pending(r: RecipientState): boolean { return PENDING.has(r.state); }

/** The earliest next attempt of a pending recipient (epoch ms; 0: now); undefined when none is pending. */
export function dueOf(state: DeliveryState): number | undefined {
  let due: number | undefined;
  for (const r of state.recipients) {
    if (!pending(r)) continue;
    const t = r.nextAttempt ? Date.parse(r.nextAttempt) || 0 : 0;
    due = due === undefined ? t : Math.min(due, t);
  }
  return due;
}

/** Stores a message built in memory (a notice, a forwarded copy) in one go; throws on storage errors, leaving nothing behind. */
export async function storeMessage(spool: Spool, envelope: Omit<NewEnvelope, 'id'>, bytes: Buffer): Promise<Envelope> {
  const incoming = await spool.receive(envelope);
  try {
    await incoming.write(bytes);
    return await incoming.commit();
  } catch (e) {
    await incoming.abort();
    throw e;
  }
}
