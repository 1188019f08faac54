// The smtp transport: delivers a message's recipients for one destination
// (a route, [relay], or a domain's MX hosts) over cached connections, at most
// `concurrency` at once per destination. A destination that cannot be reached
// is marked dead for a short while, so queued mail for it defers at once
// instead of each message waiting for its own timeout (Postfix qmgr "dead").
import type { MxConfig } from '../config/types.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import type { MxResolver } from '../route/mx.js';
import type { Destination } from '../route/route.js';
import type { Classified } from './classify.js';
import { mxPeers, upstreamPeers } from './peers.js';
import { mxPolicy, upstreamPolicy, type Policy } from './policy.js';
import { SetupFailure, UpstreamSession } from './session.js';

export type RemoteDestination = Exclude<Destination, { kind: 'local' }>;

export interface SmtpTransportOptions {
  readonly ehloName: string;
  readonly mx: MxConfig;
  readonly resolver: MxResolver;
  /** How long an unreachable destination defers mail without trying (kept under queue.retry_min). */
  readonly deadMs: number;
  /** How long an unused connection stays open for the next message (Postfix smtp_connection_cache_time_limit). */
  readonly idleMs?: number;
}

class Pool {
  active = 0;
  /** Cached sessions, each with the timer that closes it if nobody takes it. */
  readonly idle: Array<{ session: UpstreamSession; timer: NodeJS.Timeout }> = [];
  readonly waiters: Array<() => void> = [];
  dead: { until: number; result: Classified } | undefined;
  constructor(readonly limit: number, readonly policy: Policy) {}

  async slot(): Promise<void> {
    if (this.active < this.limit) { this.active++; return; }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next(); else this.active--;
  }
}

export class SmtpTransport {
  private readonly pools = new Map<string, Pool>();
  private readonly idleMs: number;
  private closed = false;

  constructor(private readonly opts: SmtpTransportOptions) {
    this.idleMs = opts.idleMs ?? 5000;
  }

  private pool(dest: RemoteDestination): Pool {
    let p = this.pools.get(dest.key);
    if (!p) {
      p = dest.kind === 'upstream'
        ? new Pool(dest.upstream.concurrency, upstreamPolicy(dest.name === 'relay' ? '[relay]' : `route ${dest.name}`, dest.upstream))
        : new Pool(this.opts.mx.concurrency, mxPolicy(dest.domain, this.opts.mx));
      this.pools.set(dest.key, p);
    }
    return p;
  }

  /** One result per recipient; never throws for mail outcomes. */
  async deliver(dest: RemoteDestination, msg: OutgoingMessage): Promise<RcptResult[]> {
    const rcpts = msg.recipients.map((r) => r.address);
    const pool = this.pool(dest);
    const suspended = () => pool.dead && pool.dead.until > Date.now()
      ? allRecipients(rcpts, 'deferred', { ...pool.dead.result.dsn, reason: `delivery temporarily suspended: ${pool.dead.result.dsn.reason}` }, 'none', 0)
      : undefined;
    const early = suspended();
    if (early) return early;
    await pool.slot();
    try {
      const late = suspended(); // it may have died while we waited for a slot
      if (late) return late;
      let session = this.takeIdle(pool);
      for (let fresh = !session; ; fresh = true) {
        let connectMs = 0;
        if (!session) {
          const started = Date.now();
          const opened = await this.open(dest, pool.policy);
          connectMs = Date.now() - started;
          if ('failure' in opened) {
            if (opened.markDead) pool.dead = { until: Date.now() + this.opts.deadMs, result: opened.failure };
            return allRecipients(rcpts, opened.failure.outcome, opened.failure.dsn, opened.relay, connectMs);
          }
          pool.dead = undefined;
          session = opened.session;
        }
        const results = await session.send(msg);
        if (!fresh && session.lostBeforeData) { session.close(); session = undefined; continue; } // a cached connection the server had closed
        await this.putBack(pool, session, results.some((r) => r.outcome !== 'sent'));
        return results.map((r) => ({ ...r, connectMs }));
      }
    } finally {
      pool.release();
    }
  }

  private takeIdle(pool: Pool): UpstreamSession | undefined {
    while (pool.idle.length) {
      const { session, timer } = pool.idle.pop()!;
      clearTimeout(timer);
      if (session.usable) return session;
      session.close();
    }
    return undefined;
  }

  private async putBack(pool: Pool, session: UpstreamSession, needsReset: boolean): Promise<void> {
    // after a completed transaction the server has already reset (RFC 5321 §4.1.1.4); RSET only after a refusal
    if (this.closed || !session.usable || (needsReset && !(await session.reset()))) { session.close(); return; }
    const timer = setTimeout(() => {
      const i = pool.idle.findIndex((e) => e.session === session);
      if (i >= 0) { pool.idle.splice(i, 1); session.close(); }
    }, this.idleMs);
    timer.unref();
    pool.idle.push({ session, timer });
  }

  private async open(dest: RemoteDestination, policy: Policy):
    Promise<{ session: UpstreamSession } | { failure: Classified; relay: string; markDead: boolean }> {
    const list = dest.kind === 'upstream'
      ? await upstreamPeers(dest.upstream.host, dest.upstream.port)
      : await mxPeers(dest.domain, this.opts.mx.port, this.opts.resolver);
    if ('failure' in list) return { failure: list.failure, relay: 'none', markDead: false };
    let last: SetupFailure | undefined;
    for (const peer of list.peers) {
      try {
        return { session: await UpstreamSession.open(peer, policy, this.opts.ehloName) };
      } catch (e) {
        if (!(e instanceof SetupFailure)) throw e;
        last = e;
        if (!e.nextPeer) break;
      }
    }
    return { failure: last!.result, relay: last!.relay, markDead: true };
  }

  /** `queue flush`: try every destination again now. */
  forgetDead(): void {
    for (const p of this.pools.values()) p.dead = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pools.values()) for (const { session, timer } of p.idle.splice(0)) { clearTimeout(timer); session.close(); }
  }
}
