// The Spool conformance suite (test/helpers/spool-conformance.ts) on the PostgreSQL store, in a
// private cluster (test/helpers/postgres.ts), as a daemon and as `smarthost sendmail` open it;
// then what only a database store has: the schema migrated once by several nodes starting at
// once, synchronous_commit on whatever the role's default, a role that may not write, and
// leases between two nodes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { spoolConformance, type SpoolFactory } from '../../test/helpers/spool-conformance.js';
import { PgSpool, type PgSpoolOptions } from './pg-spool.js';
import { SCHEMA_VERSION } from './pg-schema.js';

let cluster: PgCluster;
const opened: PgSpool[] = [];
let databases = 0;
before(async () => { cluster = await startPostgres(); });
after(async () => {
  for (const sp of opened.splice(0)) await sp.close().catch(() => undefined);
  await cluster?.stop();
});

async function freshDatabase(): Promise<string> {
  return cluster.createDatabase(`conf_${++databases}`);
}

async function openOn(url: string, opts: Partial<PgSpoolOptions> = {}): Promise<PgSpool> {
  const sp = await PgSpool.open({ kind: 'postgresql', url }, { node: 'node-a', leaseMs: 60_000, role: 'daemon', ...opts });
  opened.push(sp);
  return sp;
}

function pgStore(role: PgSpoolOptions['role']): SpoolFactory {
  return {
    async create() {
      const url = await freshDatabase();
      const db = new URL(url).pathname.slice(1);
      return {
        async open() {
          const sp = await openOn(url, { role });
          await sp.recover();
          return sp;
        },
        // a real failure of COMMIT: a deferred constraint trigger that raises when the transaction commits
        async failCommits() {
          await cluster.psql(`CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$;
            CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON smarthost_queue DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit();`, db);
          return async () => { await cluster.psql('DROP TRIGGER fail_commit ON smarthost_queue; DROP FUNCTION fail_commit();', db); };
        },
      };
    },
  };
}

spoolConformance('PgSpool (daemon: new mail leased to its node)', pgStore('daemon'));
spoolConformance('PgSpool (sendmail, CLI)', pgStore('submit'));

describe('PgSpool: the database', () => {
  it('migrates the schema once when several nodes start at once', async () => {
    const url = await freshDatabase();
    const nodes = await Promise.all(['a', 'b', 'c', 'd'].map((n) => openOn(url, { node: `node-${n}` })));
    const v = await nodes[0]!.describe();
    assert.deepEqual(v, { version: SCHEMA_VERSION, expected: SCHEMA_VERSION, canWrite: true });
    const db = new URL(url).pathname.slice(1);
    assert.equal((await cluster.psql('SELECT count(*) FROM smarthost_schema', db)).trim(), '1');
  });

  it('commits with synchronous_commit on even when the role defaults to off', async () => {
    const db = `sync_${++databases}`;
    await cluster.createDatabase(db);
    const url = await cluster.createRole('lazy', 'lazy-pw', db, `GRANT ALL ON SCHEMA public TO lazy; ALTER ROLE lazy SET synchronous_commit = off`);
    const sp = await openOn(url);
    const c = await sp.pool.connect();
    try { assert.equal((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit, 'on'); } finally { c.release(); }
    const plain = new pg.Client({ connectionString: url });
    await plain.connect();
    try { assert.equal((await plain.query('SHOW synchronous_commit')).rows[0].synchronous_commit, 'off', 'the role default (so the check above means something)'); } finally { await plain.end(); }
  });

  it('says when the role cannot write the queue', async () => {
    const url = await freshDatabase();
    await openOn(url); // the schema, made by its owner
    const db = new URL(url).pathname.slice(1);
    const ro = await cluster.createRole(`reader_${databases}`, 'pw', db, `GRANT SELECT ON smarthost_queue, smarthost_schema TO reader_${databases}`);
    const sp = await openOn(ro, { role: 'reader' });
    assert.deepEqual(await sp.describe(), { version: SCHEMA_VERSION, expected: SCHEMA_VERSION, canWrite: false });
  });
});
