// A per-upstream message rate ("30/1m"): at most `count` messages in any
// window of `windowMs`, as the upstream counts them. Deliveries over the
// limit wait for a permit in arrival order; nothing is refused here.
// RateLimiter counts for this process; on a shared store the transport takes
// its permits and connection slots from `SharedRouteLimits` instead
// (queue/pg-limits.ts), so every node counts against one limit.
import type { Rate } from '../config/units.js';

/** Time, injectable so tests run on a fake clock. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  later(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  later: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return () => clearTimeout(t); },
};

/** One message's right to go; `release(true)` once it was handed to the upstream, `release(false)` if it never was. */
export interface Permit { release(used: boolean): void }

/**
 * A limit a delivery waits for: `acquire()` resolves with a permit once one more fits, in
 * arrival order. An in-process gate never rejects; a shared one rejects when its store cannot
 * be asked, and the delivery is then deferred ("not now"), never sent past the limit.
 */
export interface Gate { acquire(): Promise<Permit> }

/** Cluster-wide limits of routes, by route key ("relay", "route:m365"), shared by every node on a store. */
export interface SharedRouteLimits {
  /** The route's `rate`, counted for every node. */
  rate(key: string, rate: Rate): Gate;
  /** The route's `concurrency`, as connection slots held by every node (besides each node's own count). */
  slots(key: string, concurrency: number): Gate;
}

export class RateLimiter implements Gate {
  /** When each message of the last window finished, oldest first. */
  private readonly finished: number[] = [];
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];
  private cancelTimer: (() => void) | undefined;

  constructor(readonly rate: Rate, private readonly clock: Clock = systemClock) {}

  /** How many deliveries wait for a permit. */
  get waiting(): number { return this.waiters.length; }

  /**
   * Resolves when one more message fits. A message counts from its permit
   * until a window after it finished: the upstream's clock starts when it
   * receives the message, which is after we start sending, so counting from
   * the finish keeps any `windowMs` at the upstream under `count` however long
   * each transfer took.
   */
  acquire(): Promise<Permit> {
    return new Promise((resolve) => {
      this.waiters.push(() => resolve(this.permit()));
      this.pump();
    });
  }

  private permit(): Permit {
    let done = false;
    return {
      release: (used) => {
        if (done) return;
        done = true;
        this.inFlight--;
        if (used) this.finished.push(this.clock.now());
        this.pump();
      },
    };
  }

  private pump(): void {
    const now = this.clock.now();
    while (this.finished.length && this.finished[0]! + this.rate.windowMs <= now) this.finished.shift();
    while (this.waiters.length && this.inFlight + this.finished.length < this.rate.count) {
      this.inFlight++;
      this.waiters.shift()!();
    }
    // nothing frees a place but the oldest finish leaving the window (or a permit given back)
    if (this.waiters.length && this.finished.length && !this.cancelTimer) {
      this.cancelTimer = this.clock.later(() => { this.cancelTimer = undefined; this.pump(); }, this.finished[0]! + this.rate.windowMs - now);
    }
  }
}
