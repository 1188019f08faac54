import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from './postgres.js';

describe('private PostgreSQL cluster (test helper)', () => {
  let cluster: PgCluster;
  before(async () => { cluster = await startPostgres(); });
  after(async () => { await cluster?.stop(); });

  it('serves a fresh database over 127.0.0.1 with a password, and a role with only the grants given', async () => {
    const url = await cluster.createDatabase('helper_a');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('CREATE TABLE t (v int)');
      await c.query('INSERT INTO t VALUES (1), (2)');
      assert.equal((await c.query('SELECT sum(v)::int AS s FROM t')).rows[0].s, 3);
      assert.equal((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit, 'on');
    } finally { await c.end(); }
    const ro = await cluster.createRole('reader', 'reader-pw', 'helper_a', 'GRANT SELECT ON t TO reader');
    const r = new pg.Client({ connectionString: ro });
    await r.connect();
    try {
      assert.equal((await r.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 2);
      await assert.rejects(r.query('INSERT INTO t VALUES (3)'), /permission denied/);
    } finally { await r.end(); }
    const wrong = new pg.Client({ connectionString: ro.replace('reader-pw', 'nope') });
    await assert.rejects(wrong.connect(), /password authentication failed/);
  });

  it('halt() is a crash: clients get refused; resume() brings the data back', async () => {
    const url = await cluster.createDatabase('helper_b');
    assert.equal((await cluster.psql('CREATE TABLE k (v text); INSERT INTO k VALUES (\'kept\'); SELECT v FROM k', 'helper_b')).trim(), 'kept');
    await cluster.halt();
    const c = new pg.Client({ connectionString: url });
    await assert.rejects(c.connect(), /ECONNREFUSED/);
    await cluster.resume();
    assert.equal((await cluster.psql('SELECT v FROM k', 'helper_b')).trim(), 'kept');
  });

  it('stop() removes everything and can be called twice', async () => {
    const other = await startPostgres();
    assert.notEqual(other.port, cluster.port);
    await other.stop();
    await other.stop();
    assert.equal(fs.existsSync(other.dir), false);
  });
});
