// What the cluster-wide limits share (pg-limits.ts): the outage that is
// logged once, the SQL of a window in milliseconds, and the transaction that holds one limit's row lock.
import type { Pool, PoolClient } from 'pg';
import { transaction } from './pg-connect.js';

/** SQL: the interval of `$param`, a number of milliseconds (float8: windows and holds need not be whole seconds). */
export function msInterval(param: number): string {
  return `$${param}::float8 * interval '1 millisecond'`;
}

/** Whether the database answers, so that an outage is logged once and its end once. */
export class Outage {
  private down = false;
  constructor(private readonly warn: (message: string) => void) {}

  /** Runs `work` against the database; its error is logged once per outage and rethrown in words. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    let result: T;
    try { result = await work(); } catch (e) {
      const why = (e as Error).message || String(e);
      if (!this.down) this.warn(`cluster limits: the database cannot be reached (${why}); limited mail waits in the queue and AUTH is refused for now until it can`);
      this.down = true;
      throw new Error(`cannot reach the cluster limits database: ${why}`, { cause: e });
    }
    if (this.down) this.warn('cluster limits: the database can be reached again');
    this.down = false;
    return result;
  }
}

/** Runs `work` in a transaction that holds the row lock of `key`: the takers of one limit go one after the other, on every node. */
export function withKeyLocked<T>(pool: Pool, key: string, work: (c: PoolClient) => Promise<T>): Promise<T> {
  return transaction(pool, async (client) => {
    // the upsert locks the row (created the first time) until COMMIT; the next statement sees what earlier holders committed
    await client.query('INSERT INTO limit_keys (key) VALUES ($1) ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key', [key]);
    return work(client);
  });
}
