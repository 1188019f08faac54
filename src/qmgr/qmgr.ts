// The queue manager: picks up accepted mail at once, groups each message's
// pending recipients by destination, hands them to the transport and records
// one outcome per recipient. Deferred recipients come back after a backoff;
// after queue.lifetime they bounce. The schedule lives in the spool's state
// files, so it survives restarts.
//
// In memory it keeps only what scheduling needs (an Item: id, times, size,
// held), some 200 bytes a message, like OpenSMTPD's scheduler; the envelope
// and the per-recipient state are read from the spool when an attempt starts
// and let go when it ends (new mail keeps them until its first attempt).
// At start, start() schedules messages as the spool's recovery reports them,
// while new mail already comes in; see act() for the `queue` verbs meanwhile.
import type { QueueConfig } from '../config/types.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import type { Envelope, Recipient } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import { mapBounded } from '../queue/bounded.js';
import type { DeliveryState, QueueEntry, Recovered, RecoveryReport, Spool } from '../queue/spool.js';
import { dueOf, initialState, pending } from '../queue/spool.js';
import { routeFor, type Destination, type RouteTable } from '../route/choose-route.js';
import { claimFor } from './claims.js';
import { notify } from '../bounce/notices.js';
import { Item, Scheduler } from './scheduler.js';
import { applyResults, delayWarning, logDelivery, work, type Work } from './outcomes.js';

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

/** New mail keeps its envelope in memory for its first attempt while fewer than this many wait for a slot. */
const KEEP_NEW = 1000;

/** The `smarthost queue` verbs that act through the daemon. */
export type QueueVerb = 'flush' | 'hold' | 'release' | 'delete';

export interface ActionResult { readonly done: string[]; readonly missing: string[] }

export class QueueManager {
  private readonly items = new Map<string, Item>();
  /** Finished messages whose file is being removed: a spool rescan must not take them for new mail. */
  private readonly removing = new Set<string>();
  private readonly scheduler: Scheduler;
  /** While start() recovers the spool: ids removed meanwhile (not to be taken back), and `queue` verbs for ALL, applied to what is found later. */
  private recovering: { readonly gone: Set<string>; readonly late: QueueVerb[] } | undefined;
  private stopped = false;
  private readonly rand: () => number;

  constructor(private o: QmgrOptions) {
    this.rand = o.rand ?? Math.random;
    this.scheduler = new Scheduler({
      run: (item) => this.attempt(item).catch((e) => this.o.log.warning(`${item.id}: delivery attempt failed: ${(e as Error).message}`, 'qmgr')),
      ended: (item) => {
        item.work = undefined; // read again for the next attempt
        if (item.deleted) void this.drop(item, 'postsuper');
        else if (this.items.get(item.id) === item) this.scheduler.schedule(item);
      },
      live: (item) => this.items.get(item.id) === item,
      deferring: () => this.o.queue.deferDelivery,
    }, o.maxActive ?? 200, o.inflowLimit ?? 100);
  }

  /** A reload: new routes and queue times apply from the next attempt; messages already waiting keep their times. */
  reconfigure(patch: Pick<QmgrOptions, 'routes' | 'queue' | 'hostname'>): void {
    const wasDeferring = this.o.queue.deferDelivery;
    this.o = { ...this.o, ...patch };
    if (wasDeferring === this.o.queue.deferDelivery) return;
    this.logDeferring();
    if (wasDeferring) for (const it of this.items.values()) this.scheduler.schedule(it); // what waited is due now
  }

  /**
   * Recovers the spool and schedules each message as it is found, by its saved next attempt.
   * New mail may be enqueued meanwhile; resolves with the spool's report when recovery ends.
   */
  async start(): Promise<RecoveryReport> {
    if (this.o.queue.deferDelivery) this.logDeferring();
    this.recovering = { gone: new Set(), late: [] };
    try {
      return await this.o.spool.recover((m) => this.adopt(m));
    } finally {
      this.recovering = undefined;
    }
  }

  /** True while start() is still reading the spool. */
  get isRecovering(): boolean { return this.recovering !== undefined; }

  private logDeferring(): void {
    this.o.log.warning(this.o.queue.deferDelivery
      ? 'delivery is deferred ([queue] defer_delivery = true): mail is accepted and kept, and delivered only by "smarthost queue flush"'
      : 'delivery resumed: [queue] defer_delivery is off', 'qmgr');
  }

  /** Known to the queue manager: queued, in delivery, or being removed. */
  has(id: string): boolean { return this.items.has(id) || this.removing.has(id); }

  /** A message just committed by intake (or a notice we spooled). */
  enqueue(envelope: Envelope): void {
    if (this.stopped || this.items.has(envelope.id)) return;
    const item = new Item(envelope.id, Date.parse(envelope.arrived) || 0, envelope.size, false, 0, false, Date.now());
    if (this.scheduler.waitingForSlot < KEEP_NEW && !this.o.queue.deferDelivery) {
      const w = work(envelope, initialState(envelope));
      // leased to this node at its commit (pg-incoming.ts); half the lease leaves room for the time since
      item.work = this.o.spool.shared ? { ...w, leasedUntil: Date.now() + this.o.queue.leaseMs / 2 } : w;
    }
    this.items.set(item.id, item);
    this.scheduler.schedule(item);
  }

  /** A message found by recovery, loaded for a `queue` verb, or (shared store) found due with no node delivering it. */
  adopt(m: Recovered): void {
    if (this.stopped || this.has(m.id) || this.recovering?.gone.has(m.id)) return;
    const item = new Item(m.id, m.arrived, m.size, m.held, m.due ?? 0, m.hasState, Date.now());
    this.items.set(m.id, item);
    if (m.due === undefined) { void this.drop(item, 'qmgr'); return; } // finished before a crash
    for (const op of this.recovering?.late ?? []) {
      if (op === 'delete') { item.deleted = true; void this.drop(item, 'postsuper'); return; }
      if (op === 'flush' && !item.held) { item.forceNext = true; item.due = 0; }
      if ((op === 'hold' || op === 'release') && item.held !== (op === 'hold')) {
        item.held = op === 'hold';
        this.persistHeld(item).catch((e: Error) => this.o.log.warning(`${m.id}: cannot save its state: ${e.message}`, 'qmgr'));
      }
    }
    this.scheduler.schedule(item);
  }

  /** Forgets a message and removes it from the spool: done ('qmgr') or deleted by `queue delete` ('postsuper'). */
  private async drop(item: Item, program: 'qmgr' | 'postsuper'): Promise<void> {
    const { id } = item;
    if (this.items.get(id) === item) this.items.delete(id);
    this.scheduler.unschedule(item);
    this.removing.add(id);
    this.recovering?.gone.add(id);
    try {
      const removed = await this.serially(item, () => this.o.spool.remove(id, { hasState: item.stateSaved, size: item.size }));
      if (removed) this.o.log.removed(id, program);
    } finally {
      this.removing.delete(id);
    }
  }

  /** Runs `fn` after the item's earlier state writes: two saves of one state file never race. */
  private serially<T>(item: Item, fn: () => Promise<T>): Promise<T> {
    const p = (item.writes ?? Promise.resolve()).catch(() => undefined).then(fn);
    item.writes = p;
    void p.catch(() => undefined).finally(() => { if (item.writes === p) item.writes = undefined; });
    return p;
  }

  /** The outcome of an attempt; on a shared store saved in the statement that ends this node's lease. */
  private saveState(item: Item, state: DeliveryState): Promise<void> {
    item.stateSaved = true;
    const { shared } = this.o.spool;
    if (!shared) return this.serially(item, () => this.o.spool.saveState(item.id, state));
    return this.serially(item, async () => {
      if (!(await shared.finish(item.id, state))) {
        this.o.log.warning(`${item.id}: its lease expired during the attempt and another node took it over; this attempt's outcome is not recorded`, 'qmgr');
      }
    });
  }

  /** Saves the item's held flag into its state (read from the spool unless an attempt has it). */
  private persistHeld(item: Item): Promise<void> {
    return this.serially(item, async () => {
      const state = item.work?.state ?? (await this.o.spool.get(item.id, { hasState: item.stateSaved }))?.state;
      if (!state) return;
      const next = { ...state, held: item.held };
      if (item.work) item.work.state = next;
      await this.o.spool.saveState(item.id, next);
      item.stateSaved = true;
    });
  }

  /** One delivery attempt for every recipient that is due, grouped by destination. */
  private async attempt(item: Item): Promise<void> {
    const started = Date.now();
    const force = item.forceNext;
    item.forceNext = false;
    const { shared } = this.o.spool;
    const kept = item.work && (!shared || (item.work.leasedUntil ?? 0) > started) ? item.work : undefined;
    const w = kept ?? (item.work = await this.load(item));
    if (!w) return;
    const due = w.state.recipients.filter((r) =>
      pending(r) && (force || !r.nextAttempt || Date.parse(r.nextAttempt) <= started));
    if (!due.length) {
      if (shared) await this.serially(item, () => shared.release(item.id)); // not due yet: the lease goes back
      return;
    }
    const groups = new Map<string, { dest: Destination; rcpts: Recipient[] }>();
    for (const r of due) {
      const dest = routeFor(this.o.routes, w.envelope.sender, r.address);
      const g = groups.get(dest.key) ?? { dest, rcpts: [] };
      g.rcpts.push(w.rcpt.get(r.address) ?? { address: r.address });
      groups.set(dest.key, g);
    }
    const { envelope } = w;
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
    await this.record(item, w, results);
  }

  /**
   * The envelope and state of a message about to be tried: from the spool, or on a shared store
   * claimed from it. Gone (deleted behind our back): forgotten. Nothing left to deliver: removed.
   * Not now (unreadable, another node's lease, held): undefined, with its next time set.
   */
  private async load(item: Item): Promise<Work | undefined> {
    const { shared } = this.o.spool;
    const entry = shared ? await claimFor(shared, item, this.o.log) : await this.read(item);
    if (entry === undefined) { // not now (busy, held, unreadable: claimFor or read() set when)
      if (item.held) this.scheduler.unschedule(item);
      return undefined;
    }
    const due = entry ? dueOf(entry.state) : undefined;
    if (!entry || due === undefined) {
      if (entry) await this.drop(item, 'qmgr'); else if (this.items.get(item.id) === item) this.items.delete(item.id);
      return undefined;
    }
    item.due = due;
    return work(entry.envelope, entry.state);
  }

  /** File store: the message as the spool has it; `null`: gone; `undefined`: unreadable now, tried again after retry_min. */
  private async read(item: Item): Promise<QueueEntry | null | undefined> {
    try { return (await this.o.spool.get(item.id, { hasState: item.stateSaved })) ?? null; } catch (e) {
      this.o.log.warning(`${item.id}: queue file cannot be read (${(e as Error).message}); it stays in the queue and is tried again later`, 'qmgr');
      item.due = Date.now() + this.o.queue.retryMinMs;
      return undefined;
    }
  }

  private outgoing(envelope: Envelope, recipients: Recipient[]): OutgoingMessage {
    const bytes = this.o.spool.inMemory?.(envelope.id);
    return {
      id: envelope.id, sender: envelope.sender, recipients, size: envelope.size, eightBit: envelope.body === '8BITMIME',
      ...(envelope.ret ? { ret: envelope.ret } : {}), ...(envelope.envid ? { envid: envelope.envid } : {}),
      body: () => this.o.spool.open(envelope.id), ...(bytes ? { bytes } : {}),
    };
  }

  /** Applies one attempt's outcomes: log lines, notices, new state, removal. */
  private async record(item: Item, w: Work, results: RcptResult[]): Promise<void> {
    const { envelope } = w;
    const now = Date.now();
    const byRcpt = new Map(results.map((r) => [r.rcpt, r]));
    for (const r of w.state.recipients) {
      const res = byRcpt.get(r.address);
      if (res) logDelivery(this.o.log, envelope.id, res, { arrived: Date.parse(envelope.arrived), seen: item.seenAt(Date.parse(envelope.arrived)), now });
    }
    const { recipients, failed, relayed, anyExpired } = applyResults(w, results, this.o.queue, now, this.rand);
    if (anyExpired) this.o.log.expired(envelope.id, envelope.sender);

    let state: DeliveryState = { ...w.state, held: item.held, recipients };
    const delayed = delayWarning(w, state, this.o.queue, now);
    if (delayed.length) state = { ...state, warned: true };
    for (const [kind, list] of [['failure', failed], ['delay', delayed], ['success', relayed]] as const) {
      if (!list.length) continue;
      if (!(await notify({ spool: this.o.spool, log: this.o.log, hostname: this.o.hostname, enqueue: (e) => this.enqueue(e) }, envelope, kind, list, new Date(now)))) {
        // the notice could not be stored: keep those recipients pending so the notice is not lost
        const again = new Set(list.map((d) => d.address));
        state = { ...state, ...(kind === 'delay' ? { warned: false } : {}), recipients: state.recipients.map((r) => again.has(r.address) && kind === 'failure'
          ? { ...r, state: 'deferred', nextAttempt: new Date(now + this.o.queue.retryMinMs).toISOString() } : r) };
      }
    }
    w.state = state;
    if (item.deleted) return;
    const due = dueOf(state);
    if (due === undefined) return this.drop(item, 'qmgr');
    item.due = due;
    await this.saveState(item, state);
  }

  /** What is queued right now, for metrics: messages in delivery or due, waiting for a retry, held; the oldest arrival. */
  snapshot(): { active: number; deferred: number; held: number; oldestArrivedMs?: number } {
    let active = 0, deferred = 0, held = 0;
    let oldest: number | undefined;
    for (const it of this.items.values()) {
      if (it.held) held++; else if (it.active || it.queuedToRun) active++; else deferred++;
      if (oldest === undefined || it.arrived < oldest) oldest = it.arrived;
    }
    return { active, deferred, held, ...(oldest !== undefined ? { oldestArrivedMs: oldest } : {}) };
  }

  /** Resolves at once while delivery keeps up, else when it catches up or after `maxMs` (see Scheduler.inflow()). */
  inflow(maxMs = 1000): Promise<void> {
    return this.scheduler.inflow(maxMs);
  }

  // --- control: the `smarthost queue` verbs on the running daemon --------

  /**
   * A `queue` verb from the control socket. While recovery runs, a message it has not reached
   * yet is read from the spool when named by id; with ALL, the verb acts on what is known now
   * and on each message recovery finds later (`recovering` in the reply says so).
   */
  async act(op: QueueVerb, ids: readonly string[] | 'ALL'): Promise<ActionResult & { recovering?: true }> {
    const { shared } = this.o.spool;
    if (this.recovering && ids === 'ALL') this.recovering.late.push(op);
    else if ((this.recovering || shared) && ids !== 'ALL') for (const id of ids) if (!this.has(id)) await this.loadUnknown(id);
    if (shared && ids === 'ALL') for (const m of await shared.pendingUnknown((id) => this.has(id))) this.adopt(m); // other nodes' mail
    const r = op === 'flush' ? this.flush(ids) : op === 'delete' ? await this.delete(ids) : await this.hold(ids, op === 'hold');
    return this.recovering ? { ...r, recovering: true } : r;
  }

  private async loadUnknown(id: string): Promise<void> {
    const e = await this.o.spool.get(id).catch(() => undefined);
    if (!e || this.has(id)) return;
    this.adopt({ id, arrived: Date.parse(e.envelope.arrived) || 0, size: e.envelope.size, held: e.state.held, due: dueOf(e.state), hasState: true });
  }

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
      if (it.held) continue;
      it.forceNext = true;
      done.push(it.id);
      this.o.log.queueAction(it.id, 'flush');
      if (it.active) continue; // this attempt is under way; it is the retry
      this.scheduler.makeReady(it);
    }
    return { done, missing };
  }

  async hold(ids: readonly string[] | 'ALL', held: boolean): Promise<ActionResult> {
    const { items, missing } = this.select(ids);
    const done: string[] = [];
    for (const it of items) {
      if (it.held === held) { done.push(it.id); continue; }
      it.held = held;
      if (held) this.scheduler.unschedule(it);
      await this.persistHeld(it);
      this.o.log.queueAction(it.id, held ? 'hold' : 'release');
      done.push(it.id);
      if (!held) { it.forceNext = true; this.scheduler.schedule(it); if (!it.active && !this.o.queue.deferDelivery) this.scheduler.makeReady(it); }
    }
    return { done, missing };
  }

  async delete(ids: readonly string[] | 'ALL'): Promise<ActionResult> {
    const { items, missing } = this.select(ids);
    for (const it of items) { it.deleted = true; this.scheduler.unschedule(it); }
    // an active one goes when its attempt ends; the others a few at a time (ALL of a large queue)
    await mapBounded(items.filter((it) => !it.active), (it) => this.drop(it, 'postsuper'));
    return { done: items.map((i) => i.id), missing };
  }

  /** Stops starting attempts and waits (at most `graceMs`) for those under way; unfinished ones are retried after restart. */
  async close(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    await this.scheduler.stop(graceMs);
  }
}
