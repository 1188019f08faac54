// The smtp transport: delivers a message's recipients for one destination
// (a route, [relay], or a domain's MX hosts) over cached connections. Each
// destination is a Pool that hands out a connection slot (`concurrency`), an
// optional rate permit (`rate`) and, after an upstream said "too many", a
// pause. An upstream's URLs are tried in order within one attempt, then its
// fallback_urls for what they deferred. A destination that cannot be reached
// is marked dead for a short while, so queued mail for it defers at once
// instead of each message waiting for its own timeout (Postfix qmgr "dead").
// On a shared store a route's slots and rate also come from `shared`, for every node.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MxConfig, PresetUse, UpstreamConfig } from '../config/types.js';
import { DEFAULTS } from '../config/defaults.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import type { MtaSts } from '../mta-sts/mta-sts.js';
import { describePolicy } from '../mta-sts/sts-policy.js';
import type { MxResolver } from './mx.js';
import type { Destination } from '../route/choose-route.js';
import { limitsUnavailable, policyFailure, postponed } from './classify.js';
import { dsnOf, outcomeOf, slowsDown, type Failure } from './failure.js';
import { mxPeers, upstreamPeers, type PeerList } from './peers.js';
import { mxPolicy, peerLabel, stsPolicy, upstreamPolicy, type Policy } from './upstream-policy.js';
import { RateLimiter, type Gate, type Permit, type SharedRouteLimits } from './rate-limit.js';
import { PortSense } from './port-sense.js';
import { SetupFailure, UpstreamSession, type SmtpResult } from './session.js';
import { SlowDown } from './slow-down.js';
import { providerReading, type ProviderRules } from './provider-replies.js';

export type RemoteDestination = Exclude<Destination, { kind: 'local' }>;

export interface SmtpTransportOptions {
  readonly ehloName: string;
  readonly mx: MxConfig;
  readonly resolver: MxResolver;
  /** MTA-STS for MX delivery ([mx] mta_sts); absent: not applied. */
  readonly sts?: MtaSts;
  /** How long an unreachable destination defers mail without trying (kept under queue.retry_min). */
  readonly deadMs: number;
  /** How long an unused connection stays open for the next message (Postfix smtp_connection_cache_time_limit). */
  readonly idleMs?: number;
  /** Routes' rate and concurrency counted for every node on the store; absent: this process alone counts them. */
  readonly shared?: SharedRouteLimits;
}

/**
 * Deliveries that may wait at once, over all destinations, for a rate permit or a "slow down"
 * pause. A waiting delivery stays one of the queue manager's active messages (at most 200, its
 * maxActive): without a cap, one slow route would fill them all, and mail for every other route
 * would wait behind it. Half of them may wait; past that, mail for a limited route is deferred
 * and stays in the queue for its next retry. Waiting for a connection slot is not counted: it is
 * the ordinary pace of a busy route and ends as soon as a transfer does.
 */
const MAX_PARKED = 100;

type Tier = 'primary' | 'fallback';

/** Somewhere to connect: one URL of an upstream, or a domain's MX hosts. */
interface Target { peers(): Promise<PeerList>; readonly policy: Policy }

/** A session with what the connection cache needs to know about it; `mailbox`: whom it logged in as (OAuth2), never reused for another. */
interface Lease { readonly session: UpstreamSession; readonly tier: Tier; readonly mailbox: string | undefined; readonly openedAt: number; uses: number }

interface SetupFailed { failure: Failure; relay: string; markDead: boolean }

class Pool {
  active = 0;
  /** Cached sessions, each with the timer that closes it if nobody takes it. */
  readonly idle: Array<{ lease: Lease; timer: NodeJS.Timeout }> = [];
  readonly waiters: Array<() => void> = [];
  dead: { until: number; failure: Failure } | undefined;
  readonly slow: SlowDown;
  constructor(
    concurrency: number,
    readonly label: string,
    readonly tiers: Readonly<Record<Tier, readonly Target[]>>,
    readonly reuse: { readonly messages: number; readonly timeMs: number },
    readonly rate: Gate | undefined,
    /** A preset's reading of its provider's replies (none for MX and for upstreams without one). */
    readonly rules: ProviderRules = { throttle: [], temporary: [] },
    /** The route's connection slots counted for every node (shared store), taken after one of this node's. */
    readonly sharedSlots: Gate | undefined = undefined,
  ) {
    this.slow = new SlowDown(concurrency);
  }

  /** Limited right now: a rate, or a "slow down" not yet recovered from. */
  get limited(): boolean { return this.rate !== undefined || this.slow.limit < this.slow.max || this.slow.waitMs() > 0; }

  async slot(): Promise<void> {
    if (this.active < this.slow.limit) { this.active++; return; }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    this.active--;
    this.wake();
  }
  /** Hands free slots to waiters; the limit may have shrunk below `active` (slow down) or grown back. */
  wake(): void {
    while (this.waiters.length && this.active < this.slow.limit) { this.active++; this.waiters.shift()!(); }
  }
}

export class SmtpTransport {
  private readonly pools = new Map<string, Pool>();
  private readonly idleMs: number;
  private closed = false;
  private parked = 0;
  /** What each upstream port speaks, when a connection suggests the wrong scheme (smtp:// vs smtps://). */
  private readonly sense = new PortSense();

  constructor(private readonly opts: SmtpTransportOptions) {
    this.idleMs = opts.idleMs ?? 5000;
  }

  private pool(dest: RemoteDestination): Pool {
    let p = this.pools.get(dest.key);
    if (!p) {
      p = dest.kind === 'upstream' ? upstreamPool(dest, this.opts.shared) : this.mxPool(dest.domain);
      this.pools.set(dest.key, p);
    }
    return p;
  }

  private mxPool(domain: string): Pool {
    const { mx, resolver } = this.opts;
    const target = { peers: () => mxPeers(domain, mx.port, resolver, this.opts.sts), policy: mxPolicy(domain, mx) };
    return new Pool(mx.concurrency, `MX of ${domain}`, { primary: [target], fallback: [] },
      { messages: DEFAULTS.reuseMessages, timeMs: DEFAULTS.reuseTimeMs }, undefined);
  }

  /** One result per recipient; never throws for mail outcomes. */
  async deliver(dest: RemoteDestination, msg: OutgoingMessage): Promise<RcptResult[]> {
    const rcpts = msg.recipients.map((r) => r.address);
    const pool = this.pool(dest);
    const suspended = () => pool.dead && pool.dead.until > Date.now()
      ? allRecipients(rcpts, 'deferred', { ...dsnOf(pool.dead.failure), reason: `delivery temporarily suspended: ${dsnOf(pool.dead.failure).reason}` }, 'none', 0)
      : undefined;
    const early = suspended();
    if (early) return early;
    const parks = pool.limited;
    if (parks && this.parked >= MAX_PARKED) {
      const f = postponed(`delivery temporarily postponed: ${pool.label} is at its rate or connection limit and ${MAX_PARKED} messages already wait for their turn`);
      return allRecipients(rcpts, outcomeOf(f), dsnOf(f), 'none', 0);
    }
    if (parks) this.parked++;
    await pool.slot();
    let slot: Permit | undefined;
    let permit: Permit | undefined;
    const used = { yes: false };
    try {
      for (let ms = pool.slow.waitMs(); ms > 0; ms = pool.slow.waitMs()) await sleep(ms); // the pause after a "slow down"
      try {
        slot = await pool.sharedSlots?.acquire();
        permit = await pool.rate?.acquire();
      } catch (e) { // a shared limit that cannot be asked: not now, and nothing past the limit
        const f = limitsUnavailable(`the cluster-wide limits of ${pool.label} cannot be checked (${(e as Error).message}), so nothing was sent`);
        return allRecipients(rcpts, outcomeOf(f), dsnOf(f), 'none', 0);
      } finally {
        if (parks) this.parked--;
      }
      const late = suspended(); // it may have died while we waited for a slot
      if (late) return late;
      return (await this.viaTiers(pool, msg, used)).map(({ failure: _, ...r }) => r); // the Failure stays inside smtp/
    } finally {
      permit?.release(used.yes);
      slot?.release(used.yes);
      pool.release();
    }
  }

  /** The primary URLs, then the fallback URLs for the recipients the primary deferred (Postfix smtp_fallback_relay). */
  private async viaTiers(pool: Pool, msg: OutgoingMessage, used: { yes: boolean }): Promise<SmtpResult[]> {
    const first = await this.viaTier(pool, 'primary', msg, used);
    const again = first.results.filter((r) => r.outcome === 'deferred').map((r) => r.rcpt);
    if (!again.length || !pool.tiers.fallback.length) {
      if (first.setup?.markDead) this.markDead(pool, first.setup);
      return first.results;
    }
    const subset = new Set(again);
    const second = await this.viaTier(pool, 'fallback', { ...msg, recipients: msg.recipients.filter((r) => subset.has(r.address)) }, used);
    if (first.setup?.markDead && second.setup?.markDead) this.markDead(pool, second.setup);
    const byRcpt = new Map(second.results.map((r) => [r.rcpt, r]));
    return first.results.map((r) => byRcpt.get(r.rcpt) ?? r);
  }

  private markDead(pool: Pool, setup: SetupFailed): void {
    pool.dead = { until: Date.now() + this.opts.deadMs, failure: setup.failure };
  }

  /** One transaction over a cached or new session to one tier's URLs. */
  private async viaTier(pool: Pool, tier: Tier, msg: OutgoingMessage, used: { yes: boolean }): Promise<{ results: SmtpResult[]; setup?: SetupFailed }> {
    const rcpts = msg.recipients.map((r) => r.address);
    const mailbox = pool.tiers[tier][0]?.policy.oauth?.mailbox(msg.sender);
    let lease = this.takeIdle(pool, tier, mailbox);
    for (let fresh = !lease; ; fresh = true) {
      let connectMs = 0;
      if (!lease) {
        const started = Date.now();
        const opened = await this.open(pool, tier, mailbox);
        connectMs = Date.now() - started;
        if (!('lease' in opened)) {
          const failure = opened.failure;
          return { results: allRecipients(rcpts, outcomeOf(failure), dsnOf(failure), opened.relay, connectMs).map((r) => ({ ...r, failure })), setup: opened };
        }
        if (tier === 'primary') pool.dead = undefined;
        lease = opened.lease;
      }
      const read = providerReading(await lease.session.send(msg), pool.rules);
      const { results } = read;
      lease.uses++;
      if (!fresh && lease.session.lostBeforeData) { lease.session.close(); lease = undefined; continue; } // a cached connection the server had closed
      used.yes = true;
      const throttled = this.observe(pool, results, read.throttled);
      await this.putBack(pool, lease, results.some((r) => r.outcome !== 'sent'), throttled);
      return { results: results.map((r) => ({ ...r, connectMs })) };
    }
  }

  /**
   * Tells the route's SlowDown how a transaction went; true when the upstream said "slow down": at
   * MAIL FROM in general words, or at any stage in words its preset knows (Gmail's 4.7.x at DATA).
   */
  private observe(pool: Pool, results: readonly SmtpResult[], presetSaysSlow: boolean): boolean {
    if (presetSaysSlow || results.some((r) => r.outcome === 'deferred' && r.failure && slowsDown(r.failure))) { pool.slow.throttled(); return true; }
    if (results.some((r) => r.outcome === 'sent')) { pool.slow.succeeded(); pool.wake(); }
    return false;
  }

  private takeIdle(pool: Pool, tier: Tier, mailbox: string | undefined): Lease | undefined {
    for (let i = pool.idle.length - 1; i >= 0; i--) {
      const { lease, timer } = pool.idle[i]!;
      if (lease.tier !== tier || lease.mailbox !== mailbox) continue;
      pool.idle.splice(i, 1);
      clearTimeout(timer);
      if (lease.session.usable && !this.spent(pool, lease)) return lease;
      lease.session.close();
    }
    return undefined;
  }

  /** Past reuse_messages or reuse_time: closed with QUIT instead of reused. */
  private spent(pool: Pool, lease: Lease): boolean {
    return lease.uses >= pool.reuse.messages || Date.now() - lease.openedAt >= pool.reuse.timeMs;
  }

  private async putBack(pool: Pool, lease: Lease, needsReset: boolean, throttled: boolean): Promise<void> {
    const { session } = lease;
    // after a completed transaction the server has already reset (RFC 5321 §4.1.1.4); RSET only after a refusal.
    // An upstream that asked us to slow down gets one connection fewer.
    if (this.closed || throttled || this.spent(pool, lease) || !session.usable || (needsReset && !(await session.reset()))) { session.close(); return; }
    const timer = setTimeout(() => {
      const i = pool.idle.findIndex((e) => e.lease === lease);
      if (i >= 0) { pool.idle.splice(i, 1); session.close(); }
    }, Math.min(this.idleMs, pool.reuse.timeMs - (Date.now() - lease.openedAt)));
    timer.unref();
    pool.idle.push({ lease, timer });
  }

  /**
   * A new session to the first of a tier's targets that answers. Connection and TLS failures and
   * refusals at the greeting move on to the next address, then the next URL; a login failure
   * stops the tier, as every URL shares the credentials.
   */
  private async open(pool: Pool, tier: Tier, mailbox: string | undefined): Promise<{ lease: Lease } | SetupFailed> {
    let last: SetupFailed | undefined;
    let throttled = false;
    for (const target of pool.tiers[tier]) {
      const list = await target.peers();
      if ('failure' in list) { last = { failure: list.failure, relay: 'none', markDead: false }; continue; }
      const policy = list.sts ? stsPolicy(target.policy, list.sts) : target.policy;
      for (const peer of list.peers) {
        try {
          const session = await UpstreamSession.open(peer, policy, this.opts.ehloName, mailbox, this.sense);
          if (policy.sts?.mode === 'testing') this.stsTesting(policy, session);
          return { lease: { session, tier, mailbox, openedAt: Date.now(), uses: 0 } };
        } catch (e) {
          if (!(e instanceof SetupFailure)) throw e;
          const slow = slowsDown(e.failure, pool.rules.throttle);
          if (slow && !throttled) { throttled = true; pool.slow.throttled(); }
          // a server that asks for fewer connections is alive: slow down, do not suspend the route
          last = { failure: stsFailure(policy, e.failure, peer.host), relay: e.relay, markDead: !slow };
          if (!e.nextPeer) return last;
        }
      }
      if (policy.sts?.mode === 'enforce' && last && /^MTA-STS policy of /.test(last.failure.text)) {
        this.opts.sts?.report({ kind: 'refused', domain: policy.sts.domain, why: 'tls', text: last.failure.text });
      }
    }
    return last!;
  }

  /** testing: what enforce would have refused about this session (RFC 8461 §4.2), reported; the mail goes on. */
  private stsTesting(policy: Policy, session: UpstreamSession): void {
    const problem = session.verifiedTls();
    if (problem === undefined || !policy.sts) return;
    this.opts.sts?.report({ kind: 'testing', domain: policy.sts.domain, why: 'tls', text:
      `${describePolicy(policy.sts.domain, policy.sts)}: MX host ${peerLabel(session.peer)} ${problem}; enforce would refuse it, testing only reports it (sent as [mx] tls = "${policy.tls}" allows)` });
  }

  /** `queue flush`: try every destination again now. */
  forgetDead(): void {
    for (const p of this.pools.values()) p.dead = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pools.values()) for (const { lease, timer } of p.idle.splice(0)) { clearTimeout(timer); lease.session.close(); }
  }
}

/** A route's or [relay]'s pool: its URLs in order, each with the upstream's TLS and credentials. */
function upstreamPool(dest: Extract<RemoteDestination, { kind: 'upstream' }>, shared: SharedRouteLimits | undefined): Pool {
  const { name, upstream: u, key } = dest;
  const policy = upstreamPolicy(name === 'relay' ? '[relay]' : `route ${name}`, u);
  // smtps:// or smtp:// is per URL; everything else (tls level, CA, credentials) is the upstream's
  const target = (url: { scheme: 'smtp' | 'smtps'; host: string; port: number }): Target =>
    ({ peers: () => upstreamPeers(url.host, url.port), policy: { ...policy, implicitTls: url.scheme === 'smtps' } });
  return new Pool(u.concurrency, policy.label,
    { primary: (u.urls ?? [u]).map(target), fallback: (u.fallbackUrls ?? []).map(target) },
    { messages: u.reuseMessages, timeMs: u.reuseTimeMs },
    u.rate ? (shared?.rate(key, u.rate) ?? new RateLimiter(u.rate)) : undefined, presetRules(u.preset), shared?.slots(key, u.concurrency));
}

function presetRules(p: PresetUse | undefined): ProviderRules {
  return p ? { throttle: p.throttle, temporary: p.temporary } : { throttle: [], temporary: [] };
}

/** enforce: a TLS failure says which policy demanded verified TLS of which MX host. */
function stsFailure(policy: Policy, failure: Failure, host: string): Failure {
  if (policy.sts?.mode !== 'enforce' || failure.kind !== 'tls') return failure;
  return policyFailure(`${describePolicy(policy.sts.domain, policy.sts)} requires verified TLS with MX host ${host}: ${failure.text}`, failure);
}
