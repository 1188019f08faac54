// When each message is tried: a deferred one waits in a heap by its next
// attempt under one timer; a due one waits in line for one of maxActive
// delivery slots. Also inflow(), which slows intake while delivery is behind.
// What an attempt does is the queue manager's (qmgr.ts).
import { DueHeap, Fifo, type HeapItem } from './due-heap.js';
import type { Work } from './outcomes.js';

const ACTIVE = 1, QUEUED = 2, DELETED = 4, FORCE = 8, HELD = 16, SAVED = 32;
/** Arrival is kept in seconds from this moment: a small integer, which V8 stores in the object (an epoch in ms gets a 16-byte box). */
const BASE = Date.now();
const SMALL = 2 ** 30;

/**
 * What the queue manager keeps of a message between attempts: ids and times, not its envelope.
 * At a million messages each field costs 8 MB: flags share one number, two times are small.
 */
export class Item implements HeapItem {
  heapIndex = -1;
  private flags: number;
  private readonly arrivedS: number;
  /** ms from arrival to when the queue manager first saw it (at most 12 days: Postfix delays "a"). */
  private readonly seenAfter: number;
  /** Envelope and state: while an attempt runs, and for new mail until its first attempt. */
  work: Work | undefined;
  /** Saves of its state and its removal, in the order they were started. */
  writes: Promise<unknown> | undefined;
  constructor(
    readonly id: string,
    arrived: number,
    readonly size: number,
    held: boolean,
    /** Epoch ms of the next attempt of a pending recipient (0: now). */
    public due: number,
    stateSaved: boolean,
    seenAt: number,
  ) {
    this.flags = (held ? HELD : 0) | (stateSaved ? SAVED : 0);
    this.arrivedS = Math.round((arrived - BASE) / 1000);
    this.seenAfter = Math.min(SMALL, Math.max(0, Math.round(seenAt - arrived)));
  }

  /** Epoch ms, to the second. */
  get arrived(): number { return BASE + this.arrivedS * 1000; }
  /** When the queue manager first saw it (epoch ms), given the arrival in the envelope. */
  seenAt(arrived: number): number { return arrived + this.seenAfter; }

  private flag(bit: number, on: boolean): void { this.flags = on ? this.flags | bit : this.flags & ~bit; }
  /** An attempt is under way. */
  get active(): boolean { return (this.flags & ACTIVE) !== 0; }
  set active(on: boolean) { this.flag(ACTIVE, on); }
  /** In line for a delivery slot. */
  get queuedToRun(): boolean { return (this.flags & QUEUED) !== 0; }
  set queuedToRun(on: boolean) { this.flag(QUEUED, on); }
  get deleted(): boolean { return (this.flags & DELETED) !== 0; }
  set deleted(on: boolean) { this.flag(DELETED, on); }
  /** The next attempt tries every pending recipient, due or not (flush). */
  get forceNext(): boolean { return (this.flags & FORCE) !== 0; }
  set forceNext(on: boolean) { this.flag(FORCE, on); }
  get held(): boolean { return (this.flags & HELD) !== 0; }
  set held(on: boolean) { this.flag(HELD, on); }
  /** A state file may exist (loaded from the spool, or saved since). */
  get stateSaved(): boolean { return (this.flags & SAVED) !== 0; }
  set stateSaved(on: boolean) { this.flag(SAVED, on); }
}

export interface SchedulerHooks {
  /** One delivery attempt. */
  run(item: Item): Promise<void>;
  /** After an attempt (failed or not): schedule it again, or drop it. */
  ended(item: Item): void;
  /** Still known to the queue manager. */
  live(item: Item): boolean;
  /** [queue] defer_delivery: nothing starts by itself. */
  deferring(): boolean;
}

const MAX_TIMER = 2 ** 31 - 1;

export class Scheduler {
  /** Deferred messages by next attempt, under one timer. */
  private readonly waiting = new DueHeap<Item>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private readonly ready = new Fifo<Item>();
  private active = 0;
  private stopped = false;
  private idle: Array<() => void> = [];
  private readonly roomWaiters: Array<() => void> = [];

  constructor(private readonly hooks: SchedulerHooks, private readonly maxActive: number, private readonly inflowLimit: number) {}

  /** Messages waiting for a delivery slot. */
  get waitingForSlot(): number { return this.ready.length; }

  /** Waits for the item's next attempt time, or puts it in line now. */
  schedule(item: Item): void {
    this.waiting.delete(item);
    // defer_delivery: nothing starts by itself; flush hands items to makeReady() directly
    if (this.stopped || item.active || item.held || item.deleted || this.hooks.deferring()) return;
    if (item.due <= Date.now()) return this.makeReady(item);
    this.waiting.set(item);
    this.arm();
  }

  /** Takes the item out of the waiting heap (a held or deleted one). */
  unschedule(item: Item): void {
    this.waiting.delete(item);
  }

  /** In line for a delivery slot now. */
  makeReady(item: Item): void {
    this.waiting.delete(item);
    if (item.queuedToRun || item.active) return;
    item.queuedToRun = true;
    this.ready.push(item);
    this.pump();
  }

  /** One timer, for the earliest message waiting. */
  private arm(): void {
    const next = this.waiting.peek();
    if (this.timer && next?.due === this.timerAt) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next?.due;
    if (!next || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      for (let it = this.waiting.peek(); it && it.due <= now; it = this.waiting.peek()) this.makeReady(it);
      this.arm();
    }, Math.max(0, Math.min(next.due - Date.now(), MAX_TIMER)));
  }

  private pump(): void {
    while (!this.stopped && this.active < this.maxActive && this.ready.length) {
      const item = this.ready.shift()!;
      item.queuedToRun = false;
      if (item.deleted || item.held || !this.hooks.live(item)) continue;
      this.active++;
      item.active = true;
      this.hooks.run(item).finally(() => {
        item.active = false;
        this.active--;
        this.hooks.ended(item);
        if (this.active === 0) this.idle.splice(0).forEach((f) => f());
        this.pump();
        if (this.hasRoom()) this.roomWaiters.splice(0).forEach((f) => f());
      });
    }
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

  /** Starts nothing more; resolves when the attempts under way have ended, or after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.roomWaiters.splice(0).forEach((f) => f());
    if (this.active === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs);
      this.idle.push(() => { clearTimeout(t); resolve(); });
    });
  }
}
