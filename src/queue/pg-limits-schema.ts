// The tables behind cluster-wide limits (issue 17 item 4), as versioned steps for the store's
// migration runner. Times are the database's (clock_timestamp()), never a node's clock, so
// nodes whose clocks disagree still count one window. Every row expires by itself: a node that
// dies leaves nothing that holds a limit for longer than its lease.
import type { Pool } from 'pg';

export interface SchemaStep { readonly version: number; readonly sql: string }

export const LIMITS_SCHEMA: readonly SchemaStep[] = [
  {
    version: 1,
    sql: `
CREATE TABLE limit_keys (
  key text PRIMARY KEY                -- one row per limited thing; taking from it locks the row
);
CREATE TABLE limit_holds (            -- connection slots and rate permits of routes
  id bigserial PRIMARY KEY,
  key text NOT NULL,                  -- 'slots:route:NAME' or 'rate:route:NAME'
  node text NOT NULL,                 -- who holds it (for people reading the table)
  expires_at timestamptz NOT NULL     -- renewed while held; a finished rate permit: its finish + window
);
CREATE INDEX limit_holds_key ON limit_holds (key, expires_at);
CREATE TABLE limit_quota_counts (     -- recipients counted against route quotas
  id bigserial PRIMARY KEY,
  key text NOT NULL,                  -- the route key ('relay', 'route:NAME')
  at timestamptz NOT NULL,
  n integer NOT NULL CHECK (n >= 0)
);
CREATE INDEX limit_quota_counts_key ON limit_quota_counts (key, at);
CREATE TABLE limit_auth_failures (    -- failed AUTH, per client address ('ip') and per account ('account')
  kind text NOT NULL,
  key text NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX limit_auth_failures_key ON limit_auth_failures (kind, key, at);
CREATE INDEX limit_auth_failures_at ON limit_auth_failures (kind, at);
CREATE TABLE limit_known_places (     -- where an account logged in from lately (limits.auth_failures_per_account)
  account text NOT NULL,
  place text NOT NULL,
  seen_at timestamptz NOT NULL,
  PRIMARY KEY (account, place)
);`,
  },
];

/** Lock id for schema changes of the limits (any constant; the store's runner uses its own). */
const LOCK = 0x5f11_0017;

/**
 * Applies the steps not applied yet, each in one transaction under an advisory lock, so that
 * nodes starting together apply each step once. The lead folds LIMITS_SCHEMA into the store's
 * own runner; this one serves tests and a store without one.
 */
export async function ensureLimitsSchema(pool: Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS limit_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM limit_schema')).rows.map((r) => r.version));
    for (const step of LIMITS_SCHEMA) {
      if (done.has(step.version)) continue;
      await client.query(step.sql);
      await client.query('INSERT INTO limit_schema (version) VALUES ($1)', [step.version]);
    }
    await client.query('COMMIT');
    return Math.max(0, ...LIMITS_SCHEMA.map((s) => s.version));
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}
