// Leases on the shared PostgreSQL queue. Before each attempt a node claims the
// message (the row locked with FOR UPDATE SKIP LOCKED, then marked with the
// node's name and a lease expiry); while the node lives it renews all its
// leases every third of `lease`; the attempt's outcome is saved in the same
// statement that ends the lease. A lease that expires (node killed,
// partitioned, stalled) leaves the message due for any node: its claim is a
// takeover, counted, because the node that died may have been told 250 by
// the upstream before it could save that (the duplicate window).
// New mail is leased to the node that accepted it (it delivers it at once).
// Idle nodes learn of work by LISTEN/NOTIFY, and by a poll in case a
// notification is lost.
import pg from 'pg';
import { connectionConfig, query, type PgStore } from './pg-connect.js';
import { CHANNEL } from './pg-incoming.js';
import { dueOf, type Claim, type DeliveryState, type Recovered, type SharedQueue } from './spool.js';
import { entryOf, rowToRecovered, SUMMARY, type SummaryRow } from './pg-rows.js';

/** A row locked by another transaction (a node saving it right now) is asked for again after this long. */
const LOCKED_RETRY_MS = 1000;
/** The poll that bounds the delay when a notification is lost (at most; half the lease when that is shorter). */
const POLL_MS = 10_000;

export class PgShared implements SharedQueue {
  readonly stats = { takeovers: 0, lost: 0 };
  private renewTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(private readonly pool: pg.Pool, private readonly store: PgStore, readonly node: string, private readonly leaseMs: number) {}

  private get lease(): string { return `clock_timestamp() + ${Math.round(this.leaseMs)} * interval '1 millisecond'`; }

  /** At start: leases this node held before (it was killed or restarted) go back to the queue; then renewals begin. */
  async start(): Promise<void> {
    const r = await this.releaseAll('release old leases');
    this.stats.takeovers += r.rowCount ?? 0;
    this.renewTimer ??= setInterval(() => void this.renew(), Math.max(200, this.leaseMs / 3));
    this.renewTimer.unref();
  }

  /** Every lease of this node goes back to the queue. */
  private releaseAll(what: string) {
    return query(this.pool, what, 'UPDATE smarthost_queue SET lease_node = NULL, lease_until = NULL WHERE lease_node = $1', [this.node]);
  }

  /** One statement for every lease of this node; a failure (database away) is retried at the next tick. */
  private async renew(): Promise<void> {
    await query(this.pool, 'renew leases', `UPDATE smarthost_queue SET lease_until = ${this.lease} WHERE lease_node = $1`, [this.node]).catch(() => undefined);
  }

  async claim(id: string): Promise<Claim> {
    const r = await query<{ lease_node: string | null; lease_until: Date | null; held: boolean; claimed: boolean; live: boolean }
      & Parameters<typeof entryOf>[0]>(this.pool, `claim ${id}`, `
      WITH c AS (
        SELECT id, lease_node, lease_until, held, lease_node IS NOT NULL AND lease_node <> $2 AND lease_until >= clock_timestamp() AS live
        FROM smarthost_queue WHERE id = $1 FOR UPDATE SKIP LOCKED
      ), u AS (
        UPDATE smarthost_queue q SET lease_node = $2, lease_until = ${this.lease}
        FROM c WHERE q.id = c.id AND NOT c.held AND NOT c.live RETURNING q.id
      )
      SELECT c.id, c.lease_node, c.lease_until, c.held, c.live, u.id IS NOT NULL AS claimed, q.envelope, q.state
      FROM c JOIN smarthost_queue q ON q.id = c.id LEFT JOIN u ON u.id = c.id`, [id, this.node]);
    const row = r.rows[0];
    if (!row) {
      const exists = await query(this.pool, `claim ${id}`, 'SELECT 1 FROM smarthost_queue WHERE id = $1', [id]);
      return exists.rowCount ? { kind: 'busy', node: '?', until: Date.now() + LOCKED_RETRY_MS } : { kind: 'gone' };
    }
    if (row.held) return { kind: 'held' };
    if (!row.claimed) return { kind: 'busy', node: row.lease_node ?? '?', until: row.lease_until?.getTime() ?? Date.now() + LOCKED_RETRY_MS };
    const takeover = row.lease_node !== null && row.lease_node !== this.node;
    if (takeover) this.stats.takeovers++;
    return { kind: 'claimed', entry: entryOf({ ...row, held: false, lease_node: null, lease_until: null }), takeover };
  }

  async finish(id: string, state: DeliveryState): Promise<boolean> {
    const due = dueOf(state);
    const r = await query(this.pool, `save the state of ${id}`, `UPDATE smarthost_queue SET state = $2, held = $3, due = $4, lease_node = NULL, lease_until = NULL
      WHERE id = $1 AND lease_node = $5`, [id, JSON.stringify(state), state.held, due === undefined ? null : new Date(due), this.node]);
    if (r.rowCount) return true;
    this.stats.lost++;
    return false;
  }

  async release(id: string): Promise<void> {
    await query(this.pool, `release ${id}`, 'UPDATE smarthost_queue SET lease_node = NULL, lease_until = NULL WHERE id = $1 AND lease_node = $2', [id, this.node]);
  }

  async due(known: (id: string) => boolean, limit: number): Promise<Recovered[]> {
    const r = await query<SummaryRow>(this.pool, 'find due mail', `SELECT ${SUMMARY} FROM smarthost_queue
      WHERE NOT held AND due <= clock_timestamp() AND (lease_until IS NULL OR lease_until < clock_timestamp()) ORDER BY due LIMIT $1`, [limit]);
    return r.rows.filter((x) => !known(x.id)).map(rowToRecovered);
  }

  async pendingUnknown(known: (id: string) => boolean): Promise<Recovered[]> {
    const r = await query<SummaryRow>(this.pool, 'list pending mail', `SELECT ${SUMMARY} FROM smarthost_queue WHERE due IS NOT NULL ORDER BY id`);
    return r.rows.filter((x) => !known(x.id)).map(rowToRecovered);
  }

  async counts(): Promise<Array<{ node: string; state: 'active' | 'deferred' | 'held'; count: number; oldestMs: number }>> {
    const r = await query<{ node: string; state: 'active' | 'deferred' | 'held'; count: number; oldest_ms: number }>(this.pool, 'count the queue', `
      SELECT coalesce(lease_node, '') AS node,
        CASE WHEN held THEN 'held' WHEN lease_node IS NOT NULL OR due <= clock_timestamp() THEN 'active' ELSE 'deferred' END AS state,
        count(*)::float8 AS count, (extract(epoch FROM min(arrived)) * 1000)::float8 AS oldest_ms
      FROM smarthost_queue WHERE due IS NOT NULL GROUP BY 1, 2`);
    return r.rows.map((x) => ({ node: x.node, state: x.state, count: x.count, oldestMs: x.oldest_ms }));
  }

  onWake(wake: () => void): void {
    this.wake = wake;
    void this.listen();
    this.pollTimer ??= setInterval(() => this.wake?.(), Math.min(POLL_MS, Math.max(200, this.leaseMs / 2)));
    this.pollTimer.unref();
  }

  /** LISTEN on a connection of its own (a pooled one would be handed to others); reconnects after a second when lost. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const c = new pg.Client(connectionConfig(this.store, `smarthost listen ${this.node}`));
    const again = () => {
      if (this.listener !== c) return;
      this.listener = undefined;
      c.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.listen(), 1000).unref();
    };
    this.listener = c;
    c.on('error', again);
    c.on('end', again);
    c.on('notification', (n) => { if (n.payload !== this.node) this.wake?.(); });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      this.wake?.(); // what was announced while we were not listening
    } catch { again(); }
  }

  /** After the queue manager stopped: this node's leases go back, so others deliver at once what it had not tried (a drain). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.pollTimer);
    if (this.renewTimer) await this.releaseAll('release leases').catch(() => undefined);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
  }
}
