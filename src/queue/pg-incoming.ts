// Receiving into the PostgreSQL store. A message's bytes are kept in memory
// until commit (intake has already bounded them by limits.message_size), then
// the committer inserts it together with every other message whose commit
// came meanwhile: one transaction, one WAL flush for all (group commit). The
// daemon's new mail is leased to it; `smarthost sendmail`'s is not, and a
// NOTIFY sent by the same COMMIT wakes the nodes to take it.
import type pg from 'pg';
import type { Envelope } from '../mail/envelope.js';
import { inTransaction } from './pg-connect.js';
import type { Incoming, NewEnvelope } from './spool.js';

/** The channel every node LISTENs on; the payload is the name of the node that sent it. */
export const CHANNEL = 'smarthost_queue';

interface Pending {
  readonly envelope: Envelope;
  readonly body: Buffer;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** Inserts committed messages in batches, one transaction (one fsync) per batch; one batch at a time. */
export class Committer {
  private waiting: Pending[] = [];
  private running = false;
  readonly stats = { runs: 0, messages: 0 };

  /** `leaseMs`: new mail is leased to this node (the daemon delivers it at once); absent (sendmail): due for any node. */
  constructor(private readonly pool: pg.Pool, private readonly node: string, private readonly leaseMs: number | undefined) {}

  commit(envelope: Envelope, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ envelope, body, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running || !this.waiting.length) return;
    this.running = true;
    const batch = this.waiting;
    this.waiting = [];
    this.stats.runs++;
    this.stats.messages += batch.length;
    this.insert(batch).then(
      (taken) => { for (const p of batch) taken.has(p.envelope.id) ? p.resolve() : p.reject(new Error(`queue id ${p.envelope.id} is taken in the queue database`)); },
      (e: Error) => { for (const p of batch) p.reject(e); },
    ).finally(() => { this.running = false; this.kick(); });
  }

  /** The ids inserted: an id another node took already (a collision, rare) is refused, the others go in. */
  private insert(batch: Pending[]): Promise<Set<string>> {
    return inTransaction(this.pool, 'commit', async (c) => {
      const r = await c.query<{ id: string }>(
        `INSERT INTO smarthost_queue (id, envelope, body, size, arrived, lease_node, lease_until)
         SELECT u.*, $6::text, CASE WHEN $6::text IS NULL THEN NULL ELSE clock_timestamp() + $7::bigint * interval '1 millisecond' END
         FROM unnest($1::text[], $2::jsonb[], $3::bytea[], $4::bigint[], $5::timestamptz[]) AS u
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [batch.map((p) => p.envelope.id), batch.map((p) => JSON.stringify(p.envelope)), batch.map((p) => p.body),
          batch.map((p) => p.envelope.size), batch.map((p) => p.envelope.arrived),
          this.leaseMs === undefined ? null : this.node, this.leaseMs ?? 0]);
      if (this.leaseMs === undefined) await c.query('SELECT pg_notify($1, $2)', [CHANNEL, this.node]); // due for any node: wake them
      return new Set(r.rows.map((x) => x.id));
    });
  }
}

export class PgIncoming implements Incoming {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(readonly id: string, private readonly envelope: NewEnvelope, private readonly committer: Committer) {}

  write(chunk: Buffer): Promise<void> {
    if (this.done) return Promise.reject(new Error(`message ${this.id} was already committed or aborted`));
    this.chunks.push(chunk);
    this.size += chunk.length;
    return Promise.resolve();
  }

  async commit(): Promise<Envelope> {
    if (this.done) throw new Error(`message ${this.id} was already committed or aborted`);
    this.done = true;
    const body = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    const envelope: Envelope = { ...this.envelope, size: body.length };
    await this.committer.commit(envelope, body);
    return envelope;
  }

  abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    return Promise.resolve();
  }
}
