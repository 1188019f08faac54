// `smarthost check` on the queue store: for a PostgreSQL store, whether the
// database answers, its schema version (the daemon migrates it at start;
// check changes nothing) and whether the role may write the queue. One pool
// serves this and check's quota counts (storePool()).
import type pg from 'pg';
import type { Config } from '../config/types.js';
import type { Finding } from './check-environment.js';

/** On a PostgreSQL store, the one pool `check` asks (schema, write access, quota counts); the caller ends it. */
export async function storePool(config: Config): Promise<pg.Pool | undefined> {
  const store = config.queue.store;
  if (store.kind === 'files') return undefined;
  const { createPool } = await import('../queue/pg-connect.js');
  // two sessions: the schema check and the quota counts run at the same time, as do their connect timeouts
  return createPool(store, { max: 2, application: 'smarthost check' });
}

export async function queueStoreCheck(config: Config, pool: pg.Pool | undefined): Promise<{ lines: string[]; findings: Finding[] }> {
  const store = config.queue.store;
  if (store.kind === 'files' || !pool) return { lines: [`  queue files under ${config.dataDir}`], findings: [] };
  const where = `queue database ${redacted(store.url)} (node ${config.queue.nodeName}, lease ${Math.round(config.queue.leaseMs / 1000)}s)`;
  const { describeSchema } = await import('../queue/pg-schema.js');
  try {
    const d = await describeSchema(pool);
    const version = d.version === 0 ? 'no schema yet (the daemon creates it at start)' : `schema version ${d.version}${d.version === d.expected ? '' : ` (this smarthost has ${d.expected}: the daemon migrates it at start)`}`;
    const write = d.version === 0 ? '' : d.canWrite ? ', this role can write' : ', this role cannot write';
    const findings: Finding[] = d.version !== 0 && !d.canWrite ? [{ level: 'error', message: `the role in queue.store cannot write the queue table smarthost_queue or the limit_* tables`,
      fix: 'GRANT SELECT, INSERT, UPDATE, DELETE ON smarthost_queue and the limit_* tables (and USAGE on their sequences) TO the role, or connect as the role that owns the schema' }] : [];
    return { lines: [`  ${where}`, `  queue database: ${version}${write}`], findings };
  } catch (e) {
    return { lines: [`  ${where}`], findings: [{ level: 'error', message: `cannot reach the queue database: ${(e as Error).message}`,
      fix: 'check queue.store (host, port, database, user), queue.password_file, and that PostgreSQL accepts this host (pg_hba.conf)' }] };
  }
}

function redacted(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return url; }
}
