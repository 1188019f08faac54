// The Spool conformance suite (test/helpers/spool-conformance.ts) on the PostgreSQL store, in a
// private cluster (test/helpers/postgres.ts), as a daemon and as `smarthost sendmail` open it;
// then what only a database store has: the schema migrated once by several nodes starting at
// once, synchronous_commit on whatever the role's default, a role that may not write, and
// leases between two nodes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { bytesOf, spoolConformance, type SpoolFactory } from '../../test/helpers/spool-conformance.js';
import { waitFor } from '../../test/helpers/wait.js';
import { PgSpool, type PgSpoolOptions } from './pg-spool.js';
import { describeSchema, SCHEMA_VERSION } from './pg-schema.js';
import { SpoolUnavailableError, storeMessage } from './spool.js';

let cluster: PgCluster;
const opened: PgSpool[] = [];
let databases = 0;
before(async () => { cluster = await startPostgres(); });
after(async () => {
  try {
    for (const sp of opened.splice(0)) await sp.close().catch(() => undefined);
  } finally { await cluster?.stop(); }
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
    const v = await describeSchema(nodes[0]!.pool);
    assert.deepEqual(v, { version: SCHEMA_VERSION, expected: SCHEMA_VERSION, canWrite: true });
    const db = new URL(url).pathname.slice(1);
    assert.equal((await cluster.psql('SELECT count(*) FROM smarthost_schema', db)).trim(), '1');
    // step 3: message bytes lz4-compressed (Debian's server has lz4), not with the slow default
    assert.equal((await cluster.psql(`SELECT attcompression FROM pg_attribute WHERE attrelid = 'smarthost_queue'::regclass AND attname = 'body'`, db)).trim(), 'l');
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
    assert.deepEqual(await describeSchema(sp.pool), { version: SCHEMA_VERSION, expected: SCHEMA_VERSION, canWrite: false });
  });
});

describe('PgSpool: leases between two nodes', () => {
  it('a claimed message is busy for the other node until its lease expires, then taken over; the late outcome is refused', async () => {
    const url = await freshDatabase();
    const a = await openOn(url, { node: 'node-a', leaseMs: 1000, role: 'daemon' });
    const b = await openOn(url, { node: 'node-b', leaseMs: 1000, role: 'daemon' });
    await b.recover(); // (node A never renews: its recover() is not called, as if it stalled)
    const m = await a.receive({ sender: 's@example.com', recipients: [{ address: 'r@example.net' }], arrived: new Date().toISOString(),
      client: { address: '192.0.2.1', hostname: 'c', helo: 'c', protocol: 'ESMTP' } });
    await m.write(Buffer.from('Subject: lease\r\n\r\nx\r\n'));
    const { id } = await m.commit();
    const busy = await b.shared!.claim(id);
    assert.equal(busy.kind, 'busy');
    assert.equal(busy.kind === 'busy' && busy.node, 'node-a', 'new mail is leased to the node that accepted it');
    assert.equal((await b.get(id))?.lease?.node, 'node-a', 'listings show the holder');
    assert.deepEqual(await b.shared!.due(() => false, 10), [], 'not due for others while leased');
    await waitFor(async () => (await b.shared!.due(() => false, 10)).length === 1, 'the lease to expire', 100, 50);
    assert.deepEqual((await b.shared!.due(() => false, 10)).map((r) => r.id), [id], 'due for any node once the lease expired');
    const taken = await b.shared!.claim(id);
    assert.equal(taken.kind, 'claimed');
    assert.equal(taken.kind === 'claimed' && taken.takeover, true);
    assert.equal(b.shared!.stats.takeovers, 1);
    const sent = { held: false, recipients: [{ address: 'r@example.net', state: 'sent' as const, attempts: 1 }] };
    assert.equal(await a.shared!.finish(id, sent), false, 'A lost its lease: its outcome is not saved');
    assert.equal(a.shared!.stats.lost, 1);
    assert.equal(await b.shared!.finish(id, sent), true);
    assert.equal((await b.get(id))?.lease, undefined, 'the lease ended with the outcome');
  });

  it('a database that is down makes commit() fail with SpoolUnavailableError, and works again when it is back', async () => {
    const url = await freshDatabase();
    const sp = await openOn(url, { role: 'submit' });
    const env = { sender: 's@example.com', recipients: [{ address: 'r@example.net' }], arrived: new Date().toISOString(),
      client: { address: '192.0.2.1', hostname: 'c', helo: 'c', protocol: 'ESMTP' } };
    const m = await sp.receive(env);
    await m.write(Buffer.from('Subject: down\r\n\r\nx\r\n'));
    await cluster.halt();
    try {
      await assert.rejects(m.commit(), SpoolUnavailableError);
    } finally { await cluster.resume(); }
    const again = await storeMessage(sp, env, Buffer.from('Subject: back\r\n\r\nx\r\n'));
    assert.deepEqual((await sp.list()).map((e) => e.envelope.id), [again.id]);
  });

  it('the daemon delivers what it committed from memory, not read back; a reader reads the database; removal forgets it', async () => {
    const url = await freshDatabase();
    const daemon = await openOn(url, { role: 'daemon' });
    const reader = await openOn(url, { role: 'reader' });
    const env = { sender: 's@example.com', recipients: [{ address: 'r@example.net' }], arrived: new Date().toISOString(),
      client: { address: '192.0.2.1', hostname: 'c', helo: 'c', protocol: 'ESMTP' } };
    const bytes = Buffer.from('Subject: kept\r\n\r\nx\r\n');
    const { id } = await storeMessage(daemon, env, bytes);
    // behind the daemon's back, so that where each read comes from shows
    await cluster.psql(`UPDATE smarthost_queue SET body = 'changed' WHERE id = '${id}'`, new URL(url).pathname.slice(1));
    assert.deepEqual(daemon.inMemory(id), bytes);
    assert.deepEqual(await bytesOf(daemon.open(id)), bytes);
    assert.equal(reader.inMemory(id), undefined);
    assert.equal((await bytesOf(reader.open(id))).toString(), 'changed');
    assert.equal(await daemon.remove(id), true);
    assert.equal(daemon.inMemory(id), undefined);
  });
});
