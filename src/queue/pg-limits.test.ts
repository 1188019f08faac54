// Cluster-wide limits on a private PostgreSQL cluster: each "node" is its own pg.Pool and
// PgLimits on one database, as two or three relays on one store would be. The limits must
// hold together under concurrent calls, a dead node's holds must free themselves, and a
// database that cannot be reached must mean "not now", logged once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { waitFor } from '../../test/helpers/wait.js';
import type { AccountFailureCounts } from '../auth/account-throttle.js';
import { AuthThrottle, type AuthFailureCounts } from '../auth/throttle.js';
import type { QuotaCounts } from '../qmgr/quota-gate.js';
import type { SharedRouteLimits } from '../smtp/rate-limit.js';
import { PgLimits, type PgLimitsOptions } from './pg-limits.js';
import { ensureSchema, SCHEMA_VERSION } from './pg-schema.js';

/** What a client's tries get, through node a or b (the same object for one node), as comparable values. */
async function authScenario(a: AuthFailureCounts, b: AuthFailureCounts, pool?: pg.Pool): Promise<unknown[]> {
  const blocked = async (wait: number | Promise<number>) => (await wait) > 0;
  const seen: unknown[] = [await blocked(a.fail('192.0.2.7')), await blocked(b.fail('::ffff:192.0.2.7')), await blocked(a.retryAfterMs('192.0.2.7'))];
  const ms = await b.fail('192.0.2.7');
  seen.push(ms > 590_000 && ms <= 600_000, await blocked(a.retryAfterMs('192.0.2.7')));
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).fail('198.51.100.9')));
  if (pool) assert.equal((await pool.query(`SELECT 1 FROM limit_auth_failures WHERE key = '198.51.100.9'`)).rowCount, 20, 'every concurrent failure counted');
  seen.push(await blocked(b.retryAfterMs('198.51.100.9')));
  seen.push(await b.unblock(['::ffff:192.0.2.7', '203.0.113.1']), await blocked(a.retryAfterMs('192.0.2.7')), await a.unblock('ALL'));
  return seen;
}

interface Node { readonly pool: pg.Pool; readonly limits: PgLimits; readonly warnings: string[] }

let cluster: PgCluster;
const nodes: Node[] = [];
let dbs = 0;

before(async () => { cluster = await startPostgres(); });
after(async () => {
  for (const n of nodes) { n.limits.close(); await n.pool.end().catch(() => undefined); }
  await cluster?.stop();
});

/** A fresh database with the limits schema, and `count` nodes on it. */
async function cluster3(count = 3, opts: Partial<PgLimitsOptions> = {}): Promise<{ url: string; nodes: Node[] }> {
  const url = await cluster.createDatabase(`limits_${++dbs}`);
  const made: Node[] = [];
  for (let i = 0; i < count; i++) {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined); // idle connections dropped by halt(): the next query reports it
    const warnings: string[] = [];
    const limits = new PgLimits(pool, { node: `node${i + 1}`, warn: (m) => warnings.push(m), pollMs: 20, ...opts });
    made.push({ pool, limits, warnings });
  }
  nodes.push(...made);
  await Promise.all(made.map((n) => ensureSchema(n.pool)));
  return { url, nodes: made };
}

async function dbNow(pool: pg.Pool): Promise<number> {
  return Number((await pool.query<{ ms: number }>('SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::float8 AS ms')).rows[0]!.ms);
}

describe('cluster-wide limits on PostgreSQL', () => {
  it('applies the schema once when three nodes start together', async () => {
    const { nodes: [a] } = await cluster3();
    const rows = (await a!.pool.query<{ version: number }>('SELECT version FROM smarthost_schema')).rows;
    assert.deepEqual(rows.map((r) => r.version), [SCHEMA_VERSION]);
    assert.equal((await a!.pool.query(`SELECT to_regclass('limit_holds')::text AS t`)).rows[0].t, 'limit_holds');
    assert.equal(await ensureSchema(a!.pool), SCHEMA_VERSION);
  });

  it("three nodes never hold more than a route's concurrency together, under many concurrent calls", async () => {
    const { nodes: three } = await cluster3();
    // two gates per node, as the transports before and after a reload would have
    const gates = three.flatMap((n) => [1, 2].map(() => (n.limits.routes() satisfies SharedRouteLimits).slots('route:m365', 3)));
    let holding = 0;
    let most = 0;
    const checker = three[0]!.pool;
    await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      const slot = await gates[i % gates.length]!.acquire();
      holding++;
      most = Math.max(most, holding);
      await waitFor(() => most === 3, 'three slots held at once'); // the first holders keep theirs until the limit is reached
      const live = (await checker.query<{ n: number }>(`SELECT count(*)::int AS n FROM limit_holds WHERE key = 'slots:route:m365' AND expires_at > clock_timestamp()`)).rows[0]!.n;
      assert.ok(live <= 3, `${live} slots live in the database`);
      holding--;
      slot.release(true);
    }));
    assert.equal(most, 3, 'the limit was reached, and never passed');
    await waitFor(async () => (await checker.query('SELECT 1 FROM limit_holds')).rowCount === 0, 'every slot released');
  });

  it('three nodes stay within a rate over a rolling window, counted from each permit until a window after its finish', async () => {
    const { nodes: three } = await cluster3();
    const rate = { count: 4, windowMs: 300 };
    const gates = three.map((n) => n.limits.routes().rate('relay', rate));
    const spans: Array<[number, number]> = [];
    const clock = three[0]!.pool;
    await Promise.all(Array.from({ length: 24 }, async (_, i) => {
      const permit = await gates[i % 3]!.acquire();
      const start = await dbNow(clock); // inside the permit: after its grant, before its finish
      const end = await dbNow(clock);
      spans.push([start, end]);
      permit.release(true);
    }));
    assert.equal(spans.length, 24);
    const overlapAt = (t: number) => spans.filter(([s, e]) => s <= t && t < e + rate.windowMs).length;
    const worst = Math.max(...spans.map(([s]) => overlapAt(s)));
    assert.ok(worst <= rate.count, `${worst} messages counted within one window`);
    assert.equal(worst, rate.count, 'the rate was used up, not left idle');
  });

  it("frees a dead node's slot when its lease runs out, and not while the node renews it", async () => {
    const { nodes: [a, b] } = await cluster3(2, { leaseMs: 300 });
    const held = await a!.limits.routes().slots('route:x', 1).acquire();
    let bGot = false;
    const waiting = b!.limits.routes().slots('route:x', 1).acquire().then((h) => { bGot = true; return h; });
    const expiry = async () => Number((await a!.pool.query<{ ms: number }>(`SELECT (EXTRACT(EPOCH FROM expires_at) * 1000)::float8 AS ms FROM limit_holds WHERE node = 'node1'`)).rows[0]?.ms ?? 0);
    const first = await expiry();
    await waitFor(async () => (await expiry()) > first + 150, 'node1 to renew its slot past its first lease');
    assert.equal(bGot, false, 'a renewed slot is not handed to another node');
    a!.limits.close(); // node1 dies holding the slot: nothing renews it any more
    const slot = await waiting;
    const rows = (await b!.pool.query<{ node: string }>('SELECT node FROM limit_holds')).rows;
    assert.deepEqual(rows.map((r) => r.node), ['node2']);
    slot.release(false);
    held.release(false);
  });

  it('hands a released slot to the same node\'s next delivery without the database, gives it back after slotReuseMs, and at close', async () => {
    const { nodes: [a, b] } = await cluster3(2, { slotReuseMs: 400 });
    const ids = async () => (await a!.pool.query<{ id: string; node: string }>('SELECT id, node FROM limit_holds ORDER BY id')).rows;
    const gateA = a!.limits.routes().slots('route:x', 1);
    (await gateA.acquire()).release(true);
    const first = await ids();
    assert.equal(first.length, 1, 'the released slot stays taken, for this node');
    let bGot = false;
    const waiting = b!.limits.routes().slots('route:x', 1).acquire().then((h) => { bGot = true; return h; });
    const again = await gateA.acquire();
    assert.deepEqual(await ids(), first, 'the same slot row, reused: no new one taken');
    assert.equal(bGot, false);
    again.release(true);
    const slot = await waiting; // after the reuse time, node2 gets the route's one slot
    assert.deepEqual((await ids()).map((r) => r.node), ['node2']);
    slot.release(true);
    await b!.limits.close();
    assert.deepEqual(await ids(), [], 'close gives the spare slot back at once');
  });

  it('three nodes never grant more recipients than the quota together; a hand-back frees places', async () => {
    const { nodes: three } = await cluster3();
    const counts = three.map((n) => n.limits.quotas() satisfies QuotaCounts);
    const quota = { count: 25, windowMs: 3_600_000 };
    const before = await dbNow(three[0]!.pool);
    const taken = await Promise.all(Array.from({ length: 30 }, (_, i) => counts[i % 3]!.take('route:m365', quota, 2)));
    assert.equal(taken.reduce((s, t) => s + t.granted, 0), 25);
    assert.equal(await three[0]!.limits.quotas().used('route:m365', quota.windowMs), 25, 'as `smarthost check` would show it');
    for (const t of taken.filter((x) => x.granted < 2)) {
      assert.ok(t.freesAt! >= before + quota.windowMs && t.freesAt! < before + quota.windowMs + 60_000, `frees a window after the first count (${t.freesAt})`);
    }
    taken.filter((t) => t.granted === 2).slice(0, 2).forEach((t) => t.giveBack(2));
    await waitFor(async () => (await counts[1]!.take('route:m365', quota, 0)).granted === 0
      && Number((await three[0]!.pool.query<{ n: number }>('SELECT sum(n)::int AS n FROM limit_quota_counts')).rows[0]!.n) === 21, 'the hand-back to land');
    const again = await counts[2]!.take('route:m365', quota, 10);
    assert.equal(again.granted, 4);
  });

  it('a quota frees its places as the oldest counts leave the rolling window', async () => {
    const { nodes: [a, b] } = await cluster3(2);
    const quota = { count: 3, windowMs: 400 };
    assert.equal((await a!.limits.quotas().take('relay', quota, 3)).granted, 3);
    const full = await b!.limits.quotas().take('relay', quota, 1);
    assert.equal(full.granted, 0);
    assert.ok(full.freesAt !== undefined);
    await waitFor(async () => (await dbNow(a!.pool)) > full.freesAt!, 'the window to pass', 400);
    assert.equal((await b!.limits.quotas().take('relay', quota, 1)).granted, 1);
  });

  it('counts AUTH failures per address seen by either node, with the same answers as AuthThrottle on one', async () => {
    const { nodes: [a, b] } = await cluster3(2);
    const rate = { count: 3, windowMs: 600_000 };
    const expected = [false, false, false, true, true, true, ['192.0.2.7'], false, ['198.51.100.9']];
    const onA = a!.limits.authFailures(rate);
    assert.deepEqual(await authScenario(onA, b!.limits.authFailures(rate), a!.pool), expected);
    const memory = new AuthThrottle(rate);
    assert.deepEqual(await authScenario(memory, memory), expected);
  });

  it('counts AUTH failures per account on either node, and lets in the places it logged in from on either', async () => {
    const { nodes: [a, b] } = await cluster3(2);
    const rate = { count: 2, windowMs: 600_000 };
    const onA: AccountFailureCounts = a!.limits.accountFailures(rate);
    const onB: AccountFailureCounts = b!.limits.accountFailures(rate);
    await onA.succeeded('bob', '2001:db8:1:2::99');
    assert.equal(await onA.fail('bob'), 0);
    assert.ok((await onB.fail('bob')) > 0);
    assert.ok((await onA.blockedForMs('bob')) > 0);
    assert.ok((await onB.retryAfterMs('bob', '192.0.2.50')) > 0, 'a stranger waits');
    assert.equal(await onB.retryAfterMs('bob', '2001:db8:1:2::abcd'), 0, 'the /64 node A saw a login from is known on node B');
    assert.deepEqual(await onB.unblock(['bob', 'alice']), ['bob']);
    assert.equal(await onA.retryAfterMs('bob', '192.0.2.50'), 0);
  });

  it('a database that cannot be reached means "not now" for every limit, logged once, and everything works after it is back', async () => {
    const { nodes: [a] } = await cluster3(1);
    const slots = a!.limits.routes().slots('route:m365', 2);
    const rate = a!.limits.routes().rate('route:m365', { count: 5, windowMs: 60_000 });
    const quotas = a!.limits.quotas();
    const auth = a!.limits.authFailures({ count: 3, windowMs: 60_000 });
    await cluster.halt();
    try {
      await assert.rejects(slots.acquire(), /cannot reach the cluster limits database/);
      await assert.rejects(rate.acquire(), /cannot reach the cluster limits database/);
      await assert.rejects(quotas.take('route:m365', { count: 10, windowMs: 60_000 }, 1), /cannot reach the cluster limits database/);
      await assert.rejects(Promise.resolve(auth.retryAfterMs('192.0.2.1')), /cannot reach the cluster limits database/);
      assert.equal(a!.warnings.length, 1, a!.warnings.join('\n'));
      assert.match(a!.warnings[0]!, /^cluster limits: the database cannot be reached \(.+\); limited mail waits in the queue and AUTH is refused for now until it can$/);
    } finally {
      await cluster.resume();
    }
    const slot = await slots.acquire();
    slot.release(true);
    assert.equal((await quotas.take('route:m365', { count: 10, windowMs: 60_000 }, 1)).granted, 1);
    assert.equal(await auth.retryAfterMs('192.0.2.1'), 0);
    assert.deepEqual(a!.warnings.slice(1), ['cluster limits: the database can be reached again']);
  });
});
