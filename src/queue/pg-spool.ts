// The spool in a PostgreSQL database that several nodes share (issue 17).
//
//   smarthost_queue   one row per committed message: envelope (jsonb), the
//                     message bytes (bytea), per-recipient state, held, the
//                     next attempt (`due`), and the lease (node, expiry)
//   smarthost_schema  the schema version (pg-schema.ts migrates it at start)
//
// A message is in the table whole or not at all: receive() keeps its bytes in
// memory until commit(), which inserts it with every other message whose
// commit came meanwhile, in one transaction that COMMITs with
// synchronous_commit on (pg-incoming.ts). Nothing partial is ever stored, so
// recovery has nothing to discard. Leases, claims and the LISTEN/NOTIFY wake-up
// are in pg-shared.ts.
import { Readable } from 'node:stream';
import type pg from 'pg';
import { isQueueId, newQueueId } from '../mail/queue-id.js';
import { createPool, query, type PgStore } from './pg-connect.js';
import { Batcher } from './batcher.js';
import { committer, PgIncoming, type Pending } from './pg-incoming.js';
import { ensureSchema } from './pg-schema.js';
import { entryOf, rowToRecovered, SUMMARY, type EntryRow, type SummaryRow } from './pg-rows.js';
import { PgShared } from './pg-shared.js';
import { RecentBodies } from './recent-bodies.js';
import {
  dueOf,
  type DeliveryState, type Incoming, type NewEnvelope, type QueueEntry, type QueueListing, type Recovered, type RecoveryReport,
  type Scanned, type Spool,
} from './spool.js';

export interface PgSpoolOptions {
  /** This node's name, on its leases. */
  readonly node: string;
  readonly leaseMs: number;
  /** 'daemon': leases new mail to itself, renews leases, listens for work; 'submit' (sendmail) and 'reader' (CLI, delivery thread) do not. */
  readonly role: 'daemon' | 'submit' | 'reader';
}

const ENTRY_COLUMNS = 'id, envelope, state, held, lease_node, lease_until';
/** The bytes of recent messages the daemon keeps in memory for their delivery, at most. */
const RECENT_BYTES = 64 * 1024 * 1024;
/** Rows read per round trip by recovery and listings. */
const PAGE = 1000;

/** What a batched statement was doing, for its error: "remove 1A2B…", or "remove 12 messages". */
const named = (verb: string, ids: string[]) => (ids.length === 1 ? `${verb} ${ids[0]}` : `${verb} ${ids.length} messages`);

export class PgSpool implements Spool {
  /** The pool, for other shared tables (cluster-wide limits) in the same database. */
  readonly pool: pg.Pool;
  readonly shared: PgShared | undefined;
  private readonly committer: Batcher<Pending>;
  /** Removals and body reads that come together share one statement (one round trip, one WAL flush). */
  private readonly removals: Batcher<string, boolean>;
  private readonly bodies: Batcher<string, Buffer>;
  /** The daemon's: what it committed, until delivered (recent-bodies.ts). */
  private readonly recent: RecentBodies | undefined;
  private closed = false;

  private constructor(store: PgStore, private readonly opts: PgSpoolOptions) {
    const daemon = opts.role === 'daemon';
    this.pool = createPool(store, { max: daemon ? 10 : 2, application: `smarthost ${opts.role} ${opts.node}` });
    this.committer = committer(this.pool, opts.node, daemon ? opts.leaseMs : undefined);
    this.removals = new Batcher(async (ids) => {
      const r = await query<{ id: string }>(this.pool, named('remove', ids), 'DELETE FROM smarthost_queue WHERE id = ANY($1::text[]) RETURNING id', [ids]);
      const gone = new Set(r.rows.map((x) => x.id));
      return ids.map((id) => gone.has(id));
    });
    this.bodies = new Batcher(async (ids) => {
      const r = await query<{ id: string; body: Buffer }>(this.pool, named('read', ids), 'SELECT id, body FROM smarthost_queue WHERE id = ANY($1::text[])', [ids]);
      const found = new Map(r.rows.map((x) => [x.id, x.body]));
      return ids.map((id) => found.get(id) ?? new Error(`no message ${id} in the queue`));
    });
    this.shared = daemon ? new PgShared(this.pool, store, opts.node, opts.leaseMs) : undefined;
    this.recent = daemon ? new RecentBodies(RECENT_BYTES) : undefined;
  }

  /**
   * Connects and brings the schema up to date (under an advisory lock: several nodes may start
   * at once). Throws when the database cannot be reached or refuses the role.
   */
  static async open(store: PgStore, opts: PgSpoolOptions): Promise<PgSpool> {
    const sp = new PgSpool(store, opts);
    try {
      await ensureSchema(sp.pool);
    } catch (e) {
      await sp.pool.end().catch(() => undefined);
      throw new Error(`cannot open the queue database: ${(e as Error).message}`, { cause: e });
    }
    return sp;
  }

  async recover(found?: (m: Recovered) => void): Promise<RecoveryReport> {
    await this.shared?.start(); // leases this node held before a restart go back to the queue
    let messages = 0;
    for await (const rows of this.pages<SummaryRow>(SUMMARY, '')) {
      for (const r of rows) { messages++; found?.(rowToRecovered(r)); }
      if (this.closed) break;
    }
    return { messages, discarded: 0, corrupt: 0 };
  }

  /** Every row, PAGE at a time in id order (keyset: no long-held snapshot, no OFFSET). */
  private async *pages<R extends { id: string }>(columns: string, where: string): AsyncGenerator<R[]> {
    let after = '';
    for (;;) {
      const r = await query<R>(this.pool, 'list', `SELECT ${columns} FROM smarthost_queue WHERE id > $1 ${where} ORDER BY id LIMIT ${PAGE}`, [after]);
      if (r.rows.length) yield r.rows;
      if (r.rows.length < PAGE) return;
      after = r.rows[r.rows.length - 1]!.id;
    }
  }

  async receive(envelope: Omit<NewEnvelope, 'id'>): Promise<Incoming> {
    if (this.closed) throw new Error('the queue is closed');
    const id = newQueueId();
    return new PgIncoming(id, { ...envelope, id }, async (p) => {
      await this.committer.request(p);
      this.recent?.keep(id, p.body);
    });
  }

  async list(): Promise<QueueEntry[]> { return (await this.listAll()).entries; }

  async listAll(): Promise<QueueListing> {
    const entries: QueueEntry[] = [];
    for await (const s of this.scan()) if (s.entry) entries.push(s.entry);
    return { entries, unreadable: [] };
  }

  async *scan(): AsyncGenerator<Scanned> {
    for await (const rows of this.pages<EntryRow>(ENTRY_COLUMNS, '')) for (const r of rows) yield { entry: entryOf(r) };
  }

  async get(id: string): Promise<QueueEntry | undefined> {
    if (!isQueueId(id)) return undefined;
    const r = await query<EntryRow>(this.pool, `read ${id}`, `SELECT ${ENTRY_COLUMNS} FROM smarthost_queue WHERE id = $1`, [id]);
    return r.rows[0] && entryOf(r.rows[0]);
  }

  /** The bytes of a message this daemon committed and has not delivered yet, without the database (recent-bodies.ts). */
  inMemory(id: string): Buffer | undefined { return this.recent?.get(id); }

  open(id: string): Readable {
    const kept = this.recent?.get(id);
    if (kept) return Readable.from([kept]);
    const bodies = this.bodies;
    return Readable.from((async function* () { yield await bodies.request(id); })());
  }

  /**
   * Saves the state (a hold, a release) without touching a lease. Refused while another node's
   * lease runs: its attempt would end by overwriting it.
   */
  async saveState(id: string, state: DeliveryState): Promise<void> {
    const due = dueOf(state);
    const r = await query(this.pool, `save the state of ${id}`, `UPDATE smarthost_queue SET state = $2, held = $3, due = $4
      WHERE id = $1 AND (lease_node IS NULL OR lease_node = $5 OR lease_until < clock_timestamp())`,
      [id, JSON.stringify(state), state.held, due === undefined ? null : new Date(due), this.opts.node]);
    if (r.rowCount) return;
    const e = await this.get(id);
    if (e?.lease) throw new Error(`${id} is being delivered by node ${e.lease.node} (lease until ${e.lease.until}): try again after that attempt`);
  }

  async remove(id: string): Promise<boolean> {
    if (!isQueueId(id)) return false;
    this.recent?.forget(id);
    return this.removals.request(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.shared?.close();
    await this.pool.end();
  }
}
