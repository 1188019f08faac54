// Cluster-wide limits on the store's PostgreSQL database (issue 17 item 4): every node on one
// store takes route connection slots, rate permits, quota counts and AUTH failure counts from
// the same tables (pg-limits-schema.ts), so three nodes send no more than one would. Taking
// from a limit locks its row in limit_keys for one short transaction; times are the database's.
// A database that cannot be reached makes every check fail ("not now"): the callers defer mail
// or refuse AUTH with 454, and nothing goes past a limit. Told once per outage, not per check.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'pg';
import { msInterval, Outage, withKeyLocked } from './pg-limits-common.js';
import type { Rate } from '../config/units.js';
import { PgQuotaCounts } from './pg-limits-quota.js';
import { PgAccountFailures, PgAuthFailures } from './pg-limits-auth.js';


/** One message's right to go, or one connection slot; `release(true)` once the message was handed to the upstream. */
export interface Hold { release(used: boolean): void }

export interface PgLimitsOptions {
  /** This node's name ([queue] node_name), written beside what it holds. */
  readonly node: string;
  /** Told once when the database cannot be reached for a limit, and once when it can again. */
  readonly warn: (message: string) => void;
  /** How long a hold outlives the last renewal by its node (a dead node's slots free themselves after it). */
  readonly leaseMs?: number;
  /** How often a full limit is asked again when nothing on this node frees it (default: 100 ms for slots, 1 s for rates). */
  readonly pollMs?: number;
  /** How long after taking a connection slot from the database this node may hand it to its next delivery. */
  readonly slotReuseMs?: number;
}

const LEASE_MS = 60_000;
const POLL_MS = 1000;
/**
 * A full route's slots free up as soon as any node's delivery ends, which this node does not
 * hear of: it asks again this often (a rate's permits free up when the window says, and
 * the database tells when that is).
 */
const SLOT_POLL_MS = 100;
const SLOT_REUSE_MS = 1000;
/** How long close() waits to give spare slots back. */
const CLOSE_WAIT_MS = 2000;

const TAKE = `
WITH t AS (SELECT clock_timestamp() AS now),
gone AS (DELETE FROM limit_holds h USING t WHERE h.key = $1 AND h.expires_at <= t.now),
live AS (SELECT count(*)::int AS n, min(h.expires_at) AS first FROM limit_holds h, t WHERE h.key = $1 AND h.expires_at > t.now),
ins AS (INSERT INTO limit_holds (key, node, expires_at)
        SELECT $1, $2, t.now + ${msInterval(3)} FROM t, live WHERE live.n < $4::int RETURNING id)
SELECT (SELECT id FROM ins)::text AS id, COALESCE(EXTRACT(EPOCH FROM live.first - t.now) * 1000, 0)::float8 AS wait_ms FROM live, t`;

const RENEW = `
INSERT INTO limit_holds (id, key, node, expires_at)
SELECT h.id, h.key, $4, clock_timestamp() + h.ms * interval '1 millisecond' FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS h(id, key, ms)
ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at`;

/**
 * Rows in limit_holds, one per slot or permit. This node renews what it holds every third of a
 * lease; a renewal also puts back a row the database lost track of (it expired during an outage
 * while the message was still being sent), so the count stays the truth.
 */
class PgHolds {
  private readonly held = new Map<string, { key: string; extendMs: number }>();
  private readonly timer: NodeJS.Timeout;
  private renewing: Promise<void> = Promise.resolve();

  constructor(private readonly pool: Pool, private readonly outage: Outage, private readonly node: string, readonly leaseMs: number) {
    this.timer = setInterval(() => { this.renewing = this.renew(); }, Math.max(1, Math.floor(leaseMs / 3)));
    this.timer.unref();
  }

  /** A new hold of `key` if fewer than `limit` are live; else how long until the first live one expires. */
  take(key: string, limit: number, extendMs: number): Promise<{ id?: string; waitMs: number }> {
    return this.outage.run(() => withKeyLocked(this.pool, key, async (c) => {
      const row = (await c.query<{ id: string | null; wait_ms: number }>(TAKE, [key, this.node, extendMs, limit])).rows[0]!;
      if (row.id === null) return { waitMs: row.wait_ms };
      this.held.set(row.id, { key, extendMs });
      return { id: row.id, waitMs: 0 };
    }));
  }

  /** Ends a hold: deleted, or (`keepMs`) kept that long from now, as a sent message counts for a rate's window. */
  async release(id: string, keepMs: number | undefined): Promise<void> {
    this.held.delete(id);
    await this.renewing; // a renewal under way must not put the row back after it is gone
    await this.outage.run(() => (keepMs === undefined
      ? this.pool.query('DELETE FROM limit_holds WHERE id = $1', [id])
      : this.pool.query(`UPDATE limit_holds SET expires_at = clock_timestamp() + ${msInterval(2)} WHERE id = $1`, [id, keepMs])));
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const ids = [...this.held.keys()];
    const rows = ids.map((id) => this.held.get(id)!);
    // a failed renewal is retried at the next tick; the rows still hold for the rest of their lease
    await this.outage.run(() => this.pool.query(RENEW, [ids, rows.map((r) => r.key), rows.map((r) => r.extendMs), this.node])).catch(() => undefined);
  }

  /** Stops renewing: what is still held expires by itself, as a dead node's would. */
  close(): void { clearInterval(this.timer); }
}

/**
 * One limit (a route's slots or its rate) as one node waits for it: callers wait in arrival
 * order, one asks the database at a time, and a release on this node asks again at once; a
 * release on another node is seen at the next poll. Implements smtp/rate-limit.ts `Gate`.
 *
 * A connection slot stands for a connection to the upstream, and this node keeps its connections
 * open for the next message; so a released slot goes to this node's next delivery without asking
 * the database, for up to `reuseMs` after it was taken. It is then given back, so another node
 * waiting for the route gets it within about that long. Rate permits are never reused: each
 * one is a message counted in the window.
 */
export class PgGate {
  private readonly waiters: Array<{ resolve: (h: Hold) => void; reject: (e: Error) => void }> = [];
  private pumping = false;
  private wake: (() => void) | undefined;
  /** Slots released on this node, still in the database, ready for the next delivery. */
  private readonly spare: Array<{ id: string; taken: number }> = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Holds freed on this node so far (a spare slot, or a row gone from the database). */
  private freed = 0;

  constructor(
    private readonly holds: PgHolds,
    readonly key: string,
    private readonly limit: number,
    /** How long a hold counts beyond a renewal: the lease, plus a rate's window (a dead node may have sent). */
    private readonly extendMs: number,
    /** A rate's window: a used permit counts this long after its release. Slots: none. */
    private readonly keepMs: number | undefined,
    private readonly pollMs: number,
    /** Slots: how long a slot taken from the database may be reused on this node (0: never). */
    private readonly reuseMs = 0,
  ) {}

  /** Resolves with a hold when one more fits; rejects when the database cannot be asked (not now). */
  acquire(): Promise<Hold> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiters.length) {
        const s = this.spare.pop();
        if (s) { this.waiters.shift()!.resolve(this.hold(s.id, s.taken)); continue; }
        const taken = Date.now();
        const freed = this.freed;
        let got: { id?: string; waitMs: number };
        try { got = await this.holds.take(this.key, this.limit, this.extendMs); } catch (e) {
          for (const w of this.waiters.splice(0)) w.reject(e as Error);
          return;
        }
        if (got.id !== undefined) { this.waiters.shift()!.resolve(this.hold(got.id, taken)); continue; }
        if (this.freed !== freed) continue; // a hold on this node was freed while we asked: its wake-up came too early
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.max(1, Math.min(got.waitMs, this.pollMs)));
          function done() { clearTimeout(t); resolve(); }
          this.wake = done;
        });
        this.wake = undefined;
      }
    } finally {
      this.pumping = false;
    }
  }

  private hold(id: string, taken: number): Hold {
    let done = false;
    return {
      release: (used) => {
        if (done) return;
        done = true;
        if (Date.now() - taken < this.reuseMs) {
          this.spare.push({ id, taken });
          this.sweepLater();
          this.freed++;
          this.wake?.(); // a delivery waiting for a full limit takes it at once
          return;
        }
        this.giveBack(id, used);
      },
    };
  }

  private giveBack(id: string, used: boolean): void {
    // an error is logged by Outage; the row then expires by itself, later than it should, never sooner
    void this.holds.release(id, used ? this.keepMs : undefined).catch(() => undefined).finally(() => { this.freed++; this.wake?.(); });
  }

  /** Gives back every spare slot now (the node stops: others need not wait for them to expire). */
  async close(): Promise<void> {
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    await Promise.all(this.spare.splice(0).map((s) => this.holds.release(s.id, undefined).catch(() => undefined)));
  }

  /** Gives back the spare slots whose reuse time is over (the oldest first: they were pushed in order of release, not of taking). */
  private sweepLater(): void {
    if (this.sweepTimer) return;
    const first = Math.min(...this.spare.map((s) => s.taken));
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      const now = Date.now();
      for (let i = this.spare.length - 1; i >= 0; i--) {
        if (now - this.spare[i]!.taken >= this.reuseMs) this.giveBack(this.spare.splice(i, 1)[0]!.id, false);
      }
      if (this.spare.length) this.sweepLater();
    }, Math.max(1, first + this.reuseMs - Date.now()));
    this.sweepTimer.unref();
  }
}

/** Every cluster-wide limit of one node, on one pool (the store's, or the delivery thread's own). */
export class PgLimits {
  private readonly outage: Outage;
  private readonly holds: PgHolds;
  private readonly pollMs: number | undefined;
  /** Slot gates, whose spare slots close() gives back. */
  private readonly gates = new Set<PgGate>();

  constructor(readonly pool: Pool, private readonly opts: PgLimitsOptions) {
    this.outage = new Outage(opts.warn);
    this.holds = new PgHolds(pool, this.outage, opts.node, opts.leaseMs ?? LEASE_MS);
    this.pollMs = opts.pollMs;
  }

  /** smtp/rate-limit.ts `SharedRouteLimits`: a route's messages per window and its connection slots, for every node. */
  routes(): { rate(key: string, rate: Rate): PgGate; slots(key: string, count: number): PgGate } {
    const lease = this.holds.leaseMs;
    return {
      rate: (key, rate) => new PgGate(this.holds, `rate:${key}`, rate.count, lease + rate.windowMs, rate.windowMs, this.pollMs ?? POLL_MS),
      slots: (key, count) => {
        const g = new PgGate(this.holds, `slots:${key}`, count, lease, undefined, this.pollMs ?? SLOT_POLL_MS, this.opts.slotReuseMs ?? SLOT_REUSE_MS);
        this.gates.add(g);
        return g;
      },
    };
  }

  /** qmgr/quota-gate.ts `QuotaCounts`. */
  quotas(): PgQuotaCounts { return new PgQuotaCounts(this.pool, this.outage); }

  /** auth/throttle.ts `AuthFailureCounts` (limits.auth_failures). */
  authFailures(rate: Rate): PgAuthFailures { return new PgAuthFailures(this.pool, this.outage, rate); }

  /** auth/account-throttle.ts `AccountFailureCounts` (limits.auth_failures_per_account). */
  accountFailures(rate: Rate): PgAccountFailures { return new PgAccountFailures(this.pool, this.outage, rate); }

  /** Gives back spare slots and stops renewing holds (those in use expire by themselves); the pool is its owner's to end. */
  async close(): Promise<void> {
    // a database that does not answer must not hold up a stop: what is not given back expires by itself
    await Promise.race([Promise.all([...this.gates].map((g) => g.close())), sleep(CLOSE_WAIT_MS, undefined, { ref: false })]);
    this.holds.close();
  }
}
