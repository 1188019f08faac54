// Route quotas ("10000/1d") counted for every node in limit_quota_counts: one row per take,
// over a rolling window in the database's time, like qmgr/quota.ts counts them in memory.
// A take is one transaction under the route's row lock, so concurrent takers on any node never
// grant more than the quota together; its COMMIT (synchronous_commit on) makes the count durable,
// as quota.json's fsync does on one node. Implements qmgr/quota-gate.ts `QuotaCounts`.
import type { Pool } from 'pg';
import { msInterval, Outage, withKeyLocked } from './pg-limits-common.js';
import type { Rate } from '../config/units.js';

/** qmgr/quota.ts `Taken`, by shape. */
export interface QuotaTaken {
  readonly granted: number;
  readonly freesAt?: number;
  giveBack(n: number): void;
}

const WINDOW = msInterval(2);

const TAKE = `
WITH t AS (SELECT clock_timestamp() AS now),
gone AS (DELETE FROM limit_quota_counts q USING t WHERE q.key = $1 AND q.at <= t.now - ${WINDOW}),
used AS (SELECT COALESCE(sum(q.n), 0)::int AS n FROM limit_quota_counts q, t WHERE q.key = $1 AND q.at > t.now - ${WINDOW}),
ins AS (INSERT INTO limit_quota_counts (key, at, n)
        SELECT $1, t.now, LEAST($3::int, $4::int - used.n) FROM t, used WHERE $4::int - used.n > 0 RETURNING id, n)
SELECT (SELECT id FROM ins)::text AS id, COALESCE((SELECT n FROM ins), 0)::int AS granted, used.n AS used, t.now::text AS now
FROM used, t`;

/** The earliest time the counts leaving the window free more than $4 places (the new row is seen: same transaction). */
const FREES_AT = `
SELECT (EXTRACT(EPOCH FROM s.at + ${WINDOW}) * 1000)::float8 AS frees_at FROM (
  SELECT q.at, sum(q.n) OVER (ORDER BY q.at, q.id) AS freed FROM limit_quota_counts q
  WHERE q.key = $1 AND q.n > 0 AND q.at > $3::timestamptz - ${WINDOW}
) s WHERE s.freed > $4::int ORDER BY s.at LIMIT 1`;

export class PgQuotaCounts {
  /** For the deferral's reason when a count cannot be recorded. */
  readonly where = 'the cluster limits database';

  constructor(private readonly pool: Pool, private readonly outage: Outage) {}

  /** Counts up to `n` recipients against `key`'s quota; resolves once the count is committed. */
  take(key: string, quota: Rate, n: number): Promise<QuotaTaken> {
    return this.outage.run(() => withKeyLocked(this.pool, `quota:${key}`, async (c) => {
      const row = (await c.query<{ id: string | null; granted: number; used: number; now: string }>(TAKE, [key, quota.windowMs, n, quota.count])).rows[0]!;
      let freesAt: number | undefined;
      if (row.granted < n) {
        const over = row.used + row.granted - quota.count;
        const found = (await c.query<{ frees_at: number }>(FREES_AT, [key, quota.windowMs, row.now, over])).rows[0];
        freesAt = found?.frees_at ?? Date.parse(row.now) + quota.windowMs;
      }
      return { id: row.id, granted: row.granted, ...(freesAt === undefined ? {} : { freesAt }) };
    })).then(({ id, granted, ...rest }) => ({ granted, ...rest, giveBack: this.giveBack(id, granted) }));
  }

  /** Recipients counted for `key` in the window that ends now, on every node (for `smarthost check`). */
  async used(key: string, windowMs: number): Promise<number> {
    const sql = `SELECT COALESCE(sum(n), 0)::int AS n FROM limit_quota_counts WHERE key = $1 AND at > clock_timestamp() - ${WINDOW}`;
    return (await this.outage.run(() => this.pool.query<{ n: number }>(sql, [key, windowMs]))).rows[0]!.n;
  }

  /** Hands back recipients not sent after all, once; a failure leaves them counted (too many, never too few). */
  private giveBack(id: string | null, granted: number): (n: number) => void {
    let open = id !== null;
    return (n) => {
      if (!open || n <= 0) return;
      open = false;
      void this.outage.run(() => this.pool.query('UPDATE limit_quota_counts SET n = n - LEAST($2::int, n) WHERE id = $1', [id, Math.min(n, granted)]))
        .catch(() => undefined);
    };
  }
}
