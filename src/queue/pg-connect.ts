// Connections to the PostgreSQL store: a pg.Pool whose every session runs with
// synchronous_commit on (a COMMIT returns only once the WAL is flushed: the
// 250 promise does not rest on the server's default) and a statement timeout,
// the password read from password_file at each connection (an edit applies at
// once), and the errors that mean "the database cannot be reached" told apart.
import fs from 'node:fs';
import pg from 'pg';
import type { QueueStore } from '../config/types.js';
import { SpoolUnavailableError } from './spool.js';

export type PgStore = Extract<QueueStore, { kind: 'postgresql' }>;

/** A statement slower than this is cancelled; the caller retries or defers, a transaction rolls back whole. */
export const STATEMENT_TIMEOUT_MS = 10_000;

/** One session's settings (a pooled one, or LISTEN's own). */
export function connectionConfig(store: PgStore, application: string): pg.ClientConfig {
  const u = new URL(store.url); // checked by config/queue-section.ts
  const sslmode = u.searchParams.get('sslmode');
  const password = store.passwordFile ? () => readPassword(store.passwordFile!) : u.password ? decodeURIComponent(u.password) : undefined;
  return {
    // from the URL ourselves rather than connectionString, which would override the password function and `options`
    user: decodeURIComponent(u.username), host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.slice(1)),
    ...(password !== undefined ? { password } : {}),
    ...(sslmode && sslmode !== 'disable' ? { ssl: { rejectUnauthorized: sslmode === 'verify-full' || sslmode === 'verify-ca' } } : {}),
    connectionTimeoutMillis: 5000,
    // the client's own limit, for a server that stops answering without closing the connection
    query_timeout: STATEMENT_TIMEOUT_MS + 2000,
    application_name: application,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    // every session: the durability promise must not depend on the server's or role's default
    options: '-c synchronous_commit=on',
  };
}

export function createPool(store: PgStore, opts: { readonly max: number; readonly application: string }): pg.Pool {
  const pool = new pg.Pool({ ...connectionConfig(store, opts.application), max: opts.max, idleTimeoutMillis: 30_000 });
  pool.on('error', () => undefined); // an idle client lost (database restarted): the pool drops it; the next query says so
  // a client lost while checked out between two queries: its next query fails ("not queryable") and it is not reused
  pool.on('connect', (client) => { client.on('error', () => undefined); });
  return pool;
}

async function readPassword(file: string): Promise<string> {
  try { return (await fs.promises.readFile(file, 'utf8')).trim(); } catch (e) {
    throw new SpoolUnavailableError(`cannot read the queue database password from ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** SQLSTATE classes and node errors that mean the database is down, restarting or unreachable (retry later), not a bad query. */
const UNAVAILABLE_STATES = /^(08|53|57P0|57014|40001|40P01|55P03|58)/; // connection, resources, shutdown, cancelled, serialization, deadlock, lock, system
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function isUnavailable(e: unknown): boolean {
  if (e instanceof SpoolUnavailableError) return true;
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || UNAVAILABLE_CODES.has(code))) return true;
  const m = (e as Error | undefined)?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(m);
}

/** The error as the spool's callers understand it: SpoolUnavailableError when the database cannot be reached. */
export function storeError(e: unknown, what: string): Error {
  if (e instanceof SpoolUnavailableError) return e;
  const text = `queue database: ${what}: ${(e as Error).message}`;
  return isUnavailable(e) ? new SpoolUnavailableError(text, { cause: e }) : new Error(text, { cause: e });
}

/**
 * Runs `fn` in one transaction on a pooled client: COMMIT on success, ROLLBACK otherwise, and
 * the error as it came (each caller words it: inTransaction() for the spool, pg-limits its own).
 */
export async function transaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken: unknown;
  try {
    await c.query('BEGIN');
    const r = await fn(c);
    await c.query('COMMIT');
    return r;
  } catch (e) {
    // a broken session is not reused: the database is out of reach, or the session cannot even roll back
    broken = isUnavailable(e) ? e : undefined;
    await c.query('ROLLBACK').catch((r: unknown) => { broken ??= r; });
    throw e;
  } finally {
    c.release(broken instanceof Error ? broken : undefined);
  }
}

/** transaction() for the spool: its error a store error that names `what`. */
export async function inTransaction<T>(pool: pg.Pool, what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  try { return await transaction(pool, fn); } catch (e) { throw storeError(e, what); }
}

/** One statement outside a transaction, its error made a store error. */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, what: string, sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  try { return await pool.query<R>(sql, values); } catch (e) { throw storeError(e, what); }
}
