// The PostgreSQL store's schema: a list of versioned steps, applied at start
// under an advisory lock, so that several nodes starting at once migrate once.
// Another part of smarthost that keeps shared tables (cluster-wide limits)
// appends its steps here; a step, once released, never changes.
import type pg from 'pg';
import { LIMITS_SQL } from './pg-limits-schema.js';

export interface Migration {
  readonly version: number;
  /** What the step does, for the log. */
  readonly what: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'the queue: one row per message, its bytes, per-recipient state and lease',
    sql: `
      CREATE TABLE smarthost_queue (
        id          text PRIMARY KEY,
        envelope    jsonb NOT NULL,
        body        bytea NOT NULL,
        size        bigint NOT NULL,
        arrived     timestamptz NOT NULL,
        held        boolean NOT NULL DEFAULT false,
        -- per-recipient delivery state (queue/spool.ts DeliveryState); NULL: every recipient queued
        state       jsonb,
        -- earliest next attempt of a recipient still to deliver; NULL: nothing left to deliver
        due         timestamptz DEFAULT '-infinity',
        lease_node  text,
        lease_until timestamptz,
        committed   timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX smarthost_queue_due ON smarthost_queue (due) WHERE NOT held AND due IS NOT NULL;
      CREATE INDEX smarthost_queue_lease ON smarthost_queue (lease_node) WHERE lease_node IS NOT NULL;`,
  },
  {
    version: 2,
    what: 'cluster-wide limits: route slots and rate permits, quota counts, AUTH failures',
    sql: LIMITS_SQL,
  },
  {
    version: 3,
    what: 'message bytes compressed with lz4, or not at all where the server lacks it',
    // bytea's default (pglz) costs more CPU per large message than the rest of its insert;
    // the bytes are read whole once and deleted soon, so fast compression or none is better
    sql: `
      DO $$ BEGIN
        ALTER TABLE smarthost_queue ALTER COLUMN body SET COMPRESSION lz4;
      EXCEPTION WHEN OTHERS THEN
        ALTER TABLE smarthost_queue ALTER COLUMN body SET STORAGE EXTERNAL;
      END $$;`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** A pool or one session: what reads that need no transaction are asked of. */
type Queryable = Pick<pg.ClientBase, 'query'>;

/** The advisory lock that serialises migrations (any fixed 64-bit key; this one is "smarthst" in ASCII). */
const LOCK_KEY = '8317411231030342516';

/** The schema version in the database; 0: none yet. */
export async function schemaVersion(c: Queryable): Promise<number> {
  const t = await c.query<{ t: string | null }>(`SELECT to_regclass('smarthost_schema')::text AS t`);
  if (!t.rows[0]?.t) return 0;
  const r = await c.query<{ version: number }>('SELECT version FROM smarthost_schema');
  return r.rows[0]?.version ?? 0;
}

/**
 * Brings the schema up to SCHEMA_VERSION, each step in its own transaction; returns the steps
 * applied. A database newer than this smarthost is refused: its rows may mean something else.
 */
export async function migrate(c: pg.ClientBase, steps: readonly Migration[] = MIGRATIONS): Promise<Migration[]> {
  const latest = steps[steps.length - 1]!.version;
  if ((await schemaVersion(c)) === latest) return []; // the common case: no lock taken
  await c.query(`SELECT pg_advisory_lock(${LOCK_KEY})`);
  try {
    await c.query('CREATE TABLE IF NOT EXISTS smarthost_schema (version integer NOT NULL)');
    const applied: Migration[] = [];
    const now = await schemaVersion(c);
    if (now > latest) throw new Error(`the queue database has schema version ${now}, newer than this smarthost's (${latest}): upgrade smarthost on this node`);
    for (const step of steps.filter((s) => s.version > now)) {
      await c.query('BEGIN');
      try {
        await c.query(step.sql);
        await c.query('DELETE FROM smarthost_schema');
        await c.query('INSERT INTO smarthost_schema (version) VALUES ($1)', [step.version]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw new Error(`queue database: schema step ${step.version} (${step.what}) failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(step);
    }
    return applied;
  } finally {
    await c.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`).catch(() => undefined);
  }
}

/** Brings a pool's database to SCHEMA_VERSION (for parts and tests that open a pool themselves); returns it. */
export async function ensureSchema(pool: pg.Pool): Promise<number> {
  const c = await pool.connect();
  try { await migrate(c); } finally { c.release(); }
  return SCHEMA_VERSION;
}

/** The schema version in the database, and whether this role may write the queue (for `smarthost check`); asked of a pool or one session. */
export async function describeSchema(c: Queryable): Promise<{ version: number; expected: number; canWrite: boolean }> {
  const version = await schemaVersion(c);
  const limits = version >= 2 ? `AND has_table_privilege('limit_holds', 'INSERT') AND has_table_privilege('limit_quota_counts', 'INSERT')
    AND has_table_privilege('limit_auth_failures', 'INSERT')` : '';
  const w = version ? await c.query<{ ok: boolean }>(`SELECT has_table_privilege('smarthost_queue', 'INSERT')
    AND has_table_privilege('smarthost_queue', 'UPDATE') AND has_table_privilege('smarthost_queue', 'DELETE') ${limits} AS ok`) : undefined;
  return { version, expected: SCHEMA_VERSION, canWrite: w?.rows[0]?.ok === true };
}
