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

const INSERT = `INSERT INTO smarthost_queue (id, envelope, body, size, arrived, lease_node, lease_until)
  SELECT u.*, $6::text, CASE WHEN $6::text IS NULL THEN NULL ELSE clock_timestamp() + $7::bigint * interval '1 millisecond' END
  FROM unnest($1::text[], $2::jsonb[], $3::bytea[], $4::bigint[], $5::timestamptz[]) AS u
  ON CONFLICT (id) DO NOTHING RETURNING id`;

/**
 * Inserts committed messages in batches, one statement (one transaction, one WAL flush) per
 * batch, one batch at a time. An id another node took already (a collision, rare) fails that
 * message only. `leaseMs`: new mail is leased to this node (the daemon delivers it at once);
 * absent (sendmail): due for any node, and the same transaction NOTIFYs them.
 */
export function committer(pool: pg.Pool, node: string, leaseMs: number | undefined): Batcher<Pending> {
  return new Batcher<Pending>(async (batch) => {
    const values = [batch.map((p) => p.envelope.id), batch.map((p) => JSON.stringify(p.envelope)), batch.map((p) => p.body),
      batch.map((p) => p.envelope.size), batch.map((p) => p.envelope.arrived), leaseMs === undefined ? null : node, leaseMs ?? 0];
    const r = leaseMs !== undefined
      ? await query<{ id: string }>(pool, 'commit', INSERT, values)
      : await inTransaction(pool, 'commit', async (c) => {
        const ins = await c.query<{ id: string }>(INSERT, values);
        await c.query('SELECT pg_notify($1, $2)', [CHANNEL, node]); // due for any node: wake them
        return ins;
      });
    const taken = new Set(r.rows.map((x) => x.id));
    return batch.map((p) => (taken.has(p.envelope.id) ? undefined : new Error(`queue id ${p.envelope.id} is taken in the queue database`)));
  });
}

export class PgIncoming implements Incoming {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(readonly id: string, private readonly envelope: NewEnvelope, private readonly committer: Batcher<Pending>) {}

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
    await this.committer.request({ envelope, body });
    return envelope;
  }

  abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    return Promise.resolve();
  }
}
