// The queue manager: picks up accepted mail at once, groups each message's
// pending recipients by destination, hands them to the transport and records
// one outcome per recipient. Deferred recipients come back after a backoff;
// after queue.lifetime they bounce. The schedule lives in the spool's state
// files, so it survives restarts. It sees ids, times and outcomes only.
import type { QueueConfig } from '../config/types.js';
import type { DsnRecipient } from '../bounce/dsn.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import type { Envelope, Recipient } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import type { Enhanced } from '../mail/reply.js';
import type { DeliveryState, RecipientState, Spool } from '../queue/spool.js';
import { initialState } from '../queue/spool.js';
import { routeFor, type Destination, type RouteTable } from '../route/route.js';
import { spoolNotice } from './notices.js';
import { expired, formatDelay, retryDelay } from './schedule.js';

/** What the queue manager needs from smtp and local delivery. */
export interface Transports {
  deliver(dest: Destination, msg: OutgoingMessage): Promise<RcptResult[]>;
  /** Forget that destinations were unreachable (`queue flush`). */
  forgetDead(): void;
}

export interface QmgrOptions {
  readonly spool: Spool;
  readonly log: MailLog;
  readonly transports: Transports;
  readonly routes: RouteTable;
  readonly queue: QueueConfig;
  readonly hostname: string;
  /** Messages in delivery at once; the rest wait their turn (Postfix qmgr_message_active_limit, scaled down). */
  readonly maxActive?: number;
  /** Messages waiting or in delivery above which new mail is slowed down (see inflow()). */
  readonly inflowLimit?: number;
  readonly rand?: () => number;
  /** Told about every recipient result with its route (metrics). */
  readonly onResult?: (route: string, result: RcptResult, arrivedMs: number) => void;
}

interface Item {
  envelope: Envelope;
  state: DeliveryState;
  /** When the queue manager first saw it (Postfix delays "a" ends here). */
  readonly seenAt: number;
  active: boolean;
  queuedToRun: boolean;
  timer: NodeJS.Timeout | undefined;
  deleted: boolean;
  forceNext: boolean;
  /** A state file may exist (loaded from the spool, or saved since). */
  stateSaved: boolean;
  /** The envelope's recipients (NOTIFY, ORCPT) by address. */
  readonly rcpt: ReadonlyMap<string, Recipient>;
}

const PENDING = new Set(['queued', 'deferred']);
const MAX_TIMER = 2 ** 31 - 1;

export interface ActionResult { readonly done: string[]; readonly missing: string[] }

export class QueueManager {
  private readonly items = new Map<string, Item>();
  /** Finished messages whose file is being removed: a spool rescan must not take them for new mail. */
  private readonly removing = new Set<string>();
  private readonly ready: Item[] = [];
  private active = 0;
  private stopped = false;
  private idle: Array<() => void> = [];
  private readonly roomWaiters: Array<() => void> = [];
  private readonly maxActive: number;
  private readonly inflowLimit: number;
  private readonly rand: () => number;

  constructor(private o: QmgrOptions) {
    this.maxActive = o.maxActive ?? 200;
    this.inflowLimit = o.inflowLimit ?? 100;
    this.rand = o.rand ?? Math.random;
  }

  /** A reload: new routes and queue times apply from the next attempt; timers already set keep their times. */
  reconfigure(patch: Pick<QmgrOptions, 'routes' | 'queue' | 'hostname'>): void {
    const wasDeferring = this.o.queue.deferDelivery;
    this.o = { ...this.o, ...patch };
    if (wasDeferring === this.o.queue.deferDelivery) return;
    this.logDeferring();
    if (wasDeferring) for (const it of this.items.values()) this.schedule(it); // what waited is due now
  }

  /** Loads everything in the spool and schedules it by its saved next-attempt times. */
  async start(): Promise<void> {
    if (this.o.queue.deferDelivery) this.logDeferring();
    for (const e of await this.o.spool.list()) this.add(e.envelope, e.state);
  }

  private logDeferring(): void {
    this.o.log.warning(this.o.queue.deferDelivery
      ? 'delivery is deferred ([queue] defer_delivery = true): mail is accepted and kept, and delivered only by "smarthost queue flush"'
      : 'delivery resumed: [queue] defer_delivery is off', 'qmgr');
  }

  /** Known to the queue manager: queued, in delivery, or being removed. */
  has(id: string): boolean { return this.items.has(id) || this.removing.has(id); }

  /** A message just committed by intake (or a notice we spooled). */
  enqueue(envelope: Envelope): void {
    if (!this.stopped) this.add(envelope, initialState(envelope), false);
  }

  private add(envelope: Envelope, state: DeliveryState, stateSaved = true): void {
    if (this.items.has(envelope.id)) return;
    const item: Item = { envelope, state, seenAt: Date.now(), active: false, queuedToRun: false, timer: undefined, deleted: false, forceNext: false, stateSaved,
      rcpt: new Map(envelope.recipients.map((r) => [r.address, r])) };
    this.items.set(envelope.id, item);
    if (!state.recipients.some((r) => PENDING.has(r.state))) { void this.drop(item, 'qmgr'); return; } // finished before a crash
    this.schedule(item);
  }

  /** Forgets a message and removes it from the spool: done ('qmgr') or deleted by `queue delete` ('postsuper'). */
  private async drop(item: Item, program: 'qmgr' | 'postsuper'): Promise<void> {
    const { id } = item.envelope;
    this.items.delete(id);
    this.removing.add(id);
    try {
      if (await this.o.spool.remove(id, { hasState: item.stateSaved, size: item.envelope.size })) this.o.log.removed(id, program);
    } finally {
      this.removing.delete(id);
    }
  }

  private dueAt(item: Item): number | undefined {
    let due: number | undefined;
    for (const r of item.state.recipients) {
      if (!PENDING.has(r.state)) continue;
      const t = r.nextAttempt ? Date.parse(r.nextAttempt) : 0;
      due = due === undefined ? t : Math.min(due, t);
    }
    return due;
  }

  private schedule(item: Item): void {
    clearTimeout(item.timer);
    item.timer = undefined;
    // defer_delivery: nothing starts by itself; flush() hands items to makeReady() directly
    if (this.stopped || item.active || item.state.held || item.deleted || this.o.queue.deferDelivery) return;
    const due = this.dueAt(item);
    if (due === undefined) return;
    const wait = due - Date.now();
    if (wait <= 0) return this.makeReady(item);
    item.timer = setTimeout(() => this.schedule(item), Math.min(wait, MAX_TIMER));
  }

  private makeReady(item: Item): void {
    if (item.queuedToRun || item.active) return;
    item.queuedToRun = true;
    this.ready.push(item);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.maxActive && this.ready.length) {
      const item = this.ready.shift()!;
      item.queuedToRun = false;
      if (item.deleted || item.state.held || !this.items.has(item.envelope.id)) continue;
      this.active++;
      item.active = true;
      this.attempt(item)
        .catch((e) => this.o.log.warning(`${item.envelope.id}: delivery attempt failed: ${(e as Error).message}`, 'qmgr'))
        .finally(() => {
          item.active = false;
          this.active--;
          if (item.deleted) void this.drop(item, 'postsuper');
          else if (this.items.has(item.envelope.id)) this.schedule(item);
          if (this.active === 0) this.idle.splice(0).forEach((f) => f());
          this.pump();
          if (this.hasRoom()) this.roomWaiters.splice(0).forEach((f) => f());
        });
    }
  }

  /** One delivery attempt for every recipient that is due, grouped by destination. */
  private async attempt(item: Item): Promise<void> {
    const { envelope } = item;
    const started = Date.now();
    const force = item.forceNext;
    item.forceNext = false;
    const due = item.state.recipients.filter((r) =>
      PENDING.has(r.state) && (force || !r.nextAttempt || Date.parse(r.nextAttempt) <= started));
    if (!due.length) return;
    const groups = new Map<string, { dest: Destination; rcpts: Recipient[] }>();
    for (const r of due) {
      const dest = routeFor(this.o.routes, envelope.sender, r.address);
      const g = groups.get(dest.key) ?? { dest, rcpts: [] };
      g.rcpts.push(item.rcpt.get(r.address) ?? { address: r.address });
      groups.set(dest.key, g);
    }
    const results = (await Promise.all([...groups.values()].map(async ({ dest, rcpts }) => {
      // a transport that throws (an unreadable queue file, a bug) defers its recipients: the other
      // groups' results are still recorded, so nothing delivered is tried again at once
      const res = await this.o.transports.deliver(dest, this.outgoing(envelope, rcpts)).catch((e: Error) => {
        this.o.log.warning(`${envelope.id}: delivery via ${dest.key} failed: ${e.message}`, 'qmgr');
        return allRecipients(rcpts.map((r) => r.address), 'deferred', { status: '4.3.0', reason: `delivery failed: ${e.message}` }, dest.kind === 'local' ? 'local' : 'none', 0);
      });
      for (const r of res) this.o.onResult?.(dest.key, r, Date.parse(envelope.arrived));
      return res;
    }))).flat();
    await this.record(item, results, started);
  }

  private outgoing(envelope: Envelope, recipients: Recipient[]): OutgoingMessage {
    return {
      id: envelope.id, sender: envelope.sender, recipients, size: envelope.size, eightBit: envelope.body === '8BITMIME',
      ...(envelope.ret ? { ret: envelope.ret } : {}), ...(envelope.envid ? { envid: envelope.envid } : {}),
      body: () => this.o.spool.open(envelope.id),
    };
  }

  /** Applies one attempt's outcomes: log lines, notices, new state, removal. */
  private async record(item: Item, results: RcptResult[], started: number): Promise<void> {
    const { envelope } = item;
    const now = Date.now();
    const arrived = Date.parse(envelope.arrived);
    const isExpired = expired(arrived, this.o.queue.lifetimeMs, now);
    const byRcpt = new Map(results.map((r) => [r.rcpt, r]));
    const failed: DsnRecipient[] = [];
    const relayed: DsnRecipient[] = [];
    const notify = (address: string, what: string) => {
      const n = item.rcpt.get(address)?.notify;
      return n === undefined ? what !== 'SUCCESS' : n.includes(what);
    };
    let anyExpired = false;
    const recipients: RecipientState[] = item.state.recipients.map((r) => {
      const res = byRcpt.get(r.address);
      if (!res) return r;
      this.logResult(envelope.id, res, { arrived, seen: item.seenAt, started, now });
      const attempts = r.attempts + 1;
      const base = { address: r.address, attempts, lastReply: res.dsn.reason, dsn: res.dsn.status };
      const entry: DsnRecipient = {
        address: r.address, action: 'failed', status: res.dsn.status, reason: res.dsn.reason, lastAttempt: new Date(now),
        ...(res.dsn.diagnostic ? { diagnostic: res.dsn.diagnostic } : {}), ...(res.dsn.remoteMta ? { remoteMta: res.dsn.remoteMta } : {}),
        ...orcptField(item, r.address),
      };
      if (res.outcome === 'sent') {
        if (notify(r.address, 'SUCCESS') && !res.dsnPassed) relayed.push({ ...entry, action: 'relayed' });
        return { ...base, state: 'sent' };
      }
      if (res.outcome === 'bounced' || isExpired) {
        if (res.outcome !== 'bounced') anyExpired = true;
        if (notify(r.address, 'FAILURE')) failed.push(entry);
        return { ...base, state: 'bounced' };
      }
      const backoff = now + retryDelay(attempts, this.o.queue.retryMinMs, this.o.queue.retryMaxMs, this.rand);
      return { ...base, state: 'deferred', nextAttempt: new Date(Math.max(backoff, res.notBefore ?? 0)).toISOString() };
    });
    if (anyExpired) this.o.log.expired(envelope.id, envelope.sender);

    let state: DeliveryState = { ...item.state, recipients };
    const delayed = this.delayWarning(item, state, now);
    if (delayed.length) state = { ...state, warned: true };
    for (const [kind, list] of [['failure', failed], ['delay', delayed], ['success', relayed]] as const) {
      if (!list.length) continue;
      if (!(await this.notify(envelope, kind, list, new Date(now)))) {
        // the notice could not be stored: keep those recipients pending so the notice is not lost
        const again = new Set(list.map((d) => d.address));
        state = { ...state, ...(kind === 'delay' ? { warned: false } : {}), recipients: state.recipients.map((r) => again.has(r.address) && kind === 'failure'
          ? { ...r, state: 'deferred', nextAttempt: new Date(now + this.o.queue.retryMinMs).toISOString() } : r) };
      }
    }
    item.state = state;
    if (item.deleted) return;
    if (state.recipients.some((r) => PENDING.has(r.state))) {
      await this.o.spool.saveState(envelope.id, state);
      item.stateSaved = true;
    } else {
      await this.drop(item, 'qmgr');
    }
  }

  private delayWarning(item: Item, state: DeliveryState, now: number): DsnRecipient[] {
    const { envelope } = item;
    const after = this.o.queue.delayWarningMs;
    if (!after || state.warned || envelope.sender === '' || now - Date.parse(envelope.arrived) < after) return [];
    const until = new Date(Date.parse(envelope.arrived) + this.o.queue.lifetimeMs);
    return state.recipients
      .filter((r) => r.state === 'deferred')
      .filter((r) => { const n = item.rcpt.get(r.address)?.notify; return n === undefined || n.includes('DELAY'); })
      .map((r) => ({
        address: r.address, action: 'delayed' as const, status: (r.dsn ?? '4.0.0') as Enhanced, reason: r.lastReply ?? 'delivery temporarily deferred',
        willRetryUntil: until, lastAttempt: new Date(now), ...orcptField(item, r.address),
      }));
  }

  /** Spools a notice to the sender; false when it could not be stored. A bounce never bounces. */
  private async notify(envelope: Envelope, kind: 'failure' | 'delay' | 'success', list: DsnRecipient[], now: Date): Promise<boolean> {
    if (envelope.sender === '') {
      if (kind === 'failure') for (const d of list) this.o.log.doubleBounce(envelope.id, d.address, d.reason);
      return true;
    }
    try {
      const notice = await spoolNotice(this.o.spool, this.o.hostname, envelope, list, now);
      this.o.log.notice(envelope.id, kind === 'failure' ? 'non-delivery' : kind === 'delay' ? 'delay' : 'delivery status', notice.id);
      this.o.log.queued(notice.id, '', notice.size, 1);
      this.enqueue(notice);
      return true;
    } catch (e) {
      this.o.log.warning(`${envelope.id}: cannot store the ${kind} notification for <${envelope.sender}>: ${(e as Error).message}; will try again`, 'bounce');
      return false;
    }
  }

  private logResult(id: string, r: RcptResult, t: { arrived: number; seen: number; started: number; now: number }): void {
    const a = Math.max(0, t.seen - t.arrived);
    const c = r.connectMs;
    const d = r.transmitMs;
    const total = Math.max(0, t.now - t.arrived);
    const b = Math.max(0, total - a - c - d);
    this.o.log.delivery(id, r.relay === 'local' ? 'local' : 'smtp', {
      to: r.rcpt, relay: r.relay, delay: formatDelay(total), delays: [formatDelay(a), formatDelay(b), formatDelay(c), formatDelay(d)],
      dsn: r.dsn.status, status: r.outcome, reason: r.dsn.reason,
    });
  }

  /** What is queued right now, for metrics: messages in delivery or due, waiting for a retry, held; the oldest arrival. */
  snapshot(): { active: number; deferred: number; held: number; oldestArrivedMs?: number } {
    let active = 0, deferred = 0, held = 0;
    let oldest: number | undefined;
    for (const it of this.items.values()) {
      if (it.state.held) held++; else if (it.active || it.queuedToRun) active++; else deferred++;
      const t = Date.parse(it.envelope.arrived);
      if (oldest === undefined || t < oldest) oldest = t;
    }
    return { active, deferred, held, ...(oldest !== undefined ? { oldestArrivedMs: oldest } : {}) };
  }

  // --- flow control: intake waits a little while delivery is behind -------

  private hasRoom(): boolean {
    return this.active + this.ready.length < this.inflowLimit;
  }

  /**
   * Resolves at once while delivery keeps up, else when it catches up or
   * after `maxMs` (Postfix in_flow_delay, 1s). Slowing intake a little leaves
   * the CPU to delivery, so the queue does not grow without bound under load.
   */
  inflow(maxMs = 1000): Promise<void> {
    if (this.stopped || this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); resolve(); };
      const t = setTimeout(() => { const i = this.roomWaiters.indexOf(done); if (i >= 0) this.roomWaiters.splice(i, 1); resolve(); }, maxMs);
      this.roomWaiters.push(done);
    });
  }

  // --- control: the `smarthost queue` verbs on the running daemon --------

  private select(ids: readonly string[] | 'ALL'): { items: Item[]; missing: string[] } {
    if (ids === 'ALL') return { items: [...this.items.values()], missing: [] };
    const items: Item[] = [];
    const missing: string[] = [];
    for (const id of ids) { const it = this.items.get(id); if (it && !it.deleted) items.push(it); else missing.push(id); }
    return { items, missing };
  }

  /** Tries deferred recipients now (all messages without ids); held mail stays held. */
  flush(ids: readonly string[] | 'ALL'): ActionResult {
    this.o.transports.forgetDead();
    const { items, missing } = this.select(ids);
    const done: string[] = [];
    for (const it of items) {
      if (it.state.held || !it.state.recipients.some((r) => PENDING.has(r.state))) continue;
      it.forceNext = true;
      done.push(it.envelope.id);
      this.o.log.queueAction(it.envelope.id, 'flush');
      if (it.active) continue; // this attempt is under way; it is the retry
      clearTimeout(it.timer);
      this.makeReady(it);
    }
    return { done, missing };
  }

  async hold(ids: readonly string[] | 'ALL', held: boolean): Promise<ActionResult> {
    const { items, missing } = this.select(ids);
    const done: string[] = [];
    for (const it of items) {
      if (it.state.held === held) { done.push(it.envelope.id); continue; }
      it.state = { ...it.state, held };
      await this.o.spool.saveState(it.envelope.id, it.state);
      it.stateSaved = true;
      this.o.log.queueAction(it.envelope.id, held ? 'hold' : 'release');
      done.push(it.envelope.id);
      if (held) clearTimeout(it.timer);
      else { it.forceNext = true; this.schedule(it); if (!it.active && !this.o.queue.deferDelivery) this.makeReady(it); }
    }
    return { done, missing };
  }

  async delete(ids: readonly string[] | 'ALL'): Promise<ActionResult> {
    const { items, missing } = this.select(ids);
    for (const it of items) {
      it.deleted = true;
      clearTimeout(it.timer);
      if (!it.active) await this.drop(it, 'postsuper'); // an active one goes when its attempt ends
    }
    return { done: items.map((i) => i.envelope.id), missing };
  }

  /** Stops starting attempts and waits (at most `graceMs`) for those under way; unfinished ones are retried after restart. */
  async close(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    for (const it of this.items.values()) clearTimeout(it.timer);
    this.roomWaiters.splice(0).forEach((f) => f());
    if (this.active === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs);
      this.idle.push(() => { clearTimeout(t); resolve(); });
    });
  }
}

function orcptField(item: Item, address: string): { orcpt?: string } {
  const orcpt = item.rcpt.get(address)?.orcpt;
  return orcpt ? { orcpt } : {};
}
