// Receiving into the PostgreSQL store. A message's bytes are kept in memory
// until commit (intake has already bounded them by limits.message_size), then
// the committer inserts it together with every other message whose commit
// came meanwhile: one statement, one WAL flush for all (group commit). The
// daemon's new mail is leased to it; `smarthost sendmail`'s is not, and a
// NOTIFY sent by the same COMMIT wakes the nodes to take it.
import type pg from 'pg';
import type { Envelope } from '../mail/envelope.js';
import { Batcher } from './batcher.js';
import { inTransaction, query } from './pg-connect.js';
import type { Incoming, NewEnvelope } from './spool.js';

/** The channel every node LISTENs on; the payload is the name of the node that sent it. */
export const CHANNEL = 'smarthost_queue';

export interface Pending {
  readonly envelope: Envelope;
  readonly body: Buffer;
}

/** Messages per INSERT at most: five parameters each, and PostgreSQL takes 65,535 in a statement. */
const MAX_BATCH = 1000;

/**
 * One row per message. Each body is a parameter of its own: node-postgres sends a Buffer
 * parameter as binary, where a bytea[] array would go as hex text for the server to parse.
 */
function insertSql(messages: number): string {
  const rows = Array.from({ length: messages }, (_, i) => {
    const p = 3 + i * 5;
    return `($${p}, $${p + 1}::jsonb, $${p + 2}::bytea, $${p + 3}::bigint, $${p + 4}::timestamptz, $1::text,
      CASE WHEN $1::text IS NULL THEN NULL ELSE clock_timestamp() + $2::bigint * interval '1 millisecond' END)`;
  });
  return `INSERT INTO smarthost_queue (id, envelope, body, size, arrived, lease_node, lease_until) VALUES ${rows.join(',\n')}
    ON CONFLICT (id) DO NOTHING RETURNING id`;
}

/**
 * Inserts committed messages in batches, one statement (one transaction, one WAL flush) per
 * batch, one batch at a time. An id another node took already (a collision, rare) fails that
 * message only. `leaseMs`: new mail is leased to this node (the daemon delivers it at once);
 * absent (sendmail): due for any node, and the same transaction NOTIFYs them.
 */
export function committer(pool: pg.Pool, node: string, leaseMs: number | undefined): Batcher<Pending> {
  return new Batcher<Pending>(async (batch) => {
    const values: unknown[] = [leaseMs === undefined ? null : node, leaseMs ?? 0];
    for (const { envelope, body } of batch) values.push(envelope.id, JSON.stringify(envelope), body, envelope.size, envelope.arrived);
    const sql = insertSql(batch.length);
    const r = leaseMs !== undefined
      ? await query<{ id: string }>(pool, 'commit', sql, values)
      : await inTransaction(pool, 'commit', async (c) => {
        const ins = await c.query<{ id: string }>(sql, values);
        await c.query('SELECT pg_notify($1, $2)', [CHANNEL, node]); // due for any node: wake them
        return ins;
      });
    const taken = new Set(r.rows.map((x) => x.id));
    return batch.map((p) => (taken.has(p.envelope.id) ? undefined : new Error(`queue id ${p.envelope.id} is taken in the queue database`)));
  }, undefined, MAX_BATCH);
}

export class PgIncoming implements Incoming {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(readonly id: string, private readonly envelope: NewEnvelope, private readonly committed: (p: Pending) => Promise<void>) {}

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
    await this.committed({ envelope, body });
    return envelope;
  }

  abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    return Promise.resolve();
  }
}
