// Failed-AUTH throttling per client address, across connections (like
// Postfix anvil): after `count` failures within `windowMs`, the address gets
// 421 4.7.0 until the oldest of those failures leaves the window, or until an
// operator lifts it (`smarthost auth unblock`). AuthThrottle keeps addresses in
// memory, in their plain form (an IPv4-mapped ::ffff:192.0.2.1 is 192.0.2.1);
// on a shared store every node counts in one table (queue/pg-limits-auth.ts).
import type { Rate } from '../config/units.js';
import { plainAddress } from '../mail/client-address.js';

const MAX_TRACKED = 100_000; // bounds memory under a distributed attack

export { plainAddress };

/** A value now (in memory) or later (a database). */
export type Maybe<T> = T | Promise<T>;

/**
 * Failed-AUTH counts per client address, as smtpd asks them. AuthThrottle answers at once; the
 * cluster-wide one asks the store, and rejects when it cannot: the caller then refuses AUTH for
 * now (454), so that an outage never lets a guesser past the limit.
 */
export interface AuthFailureCounts {
  readonly rate: Rate;
  /** How long until this address may try AUTH again: 0 when it is not blocked. */
  retryAfterMs(ip: string): Maybe<number>;
  /** Counts a failure; returns how long the address is now blocked for (0: not blocked yet). */
  fail(ip: string): Maybe<number>;
  /** Forgets the failures of these addresses ('ALL': of every address); returns those that had any. */
  unblock(ips: readonly string[] | 'ALL'): Maybe<string[]>;
}

export class AuthThrottle implements AuthFailureCounts {
  private readonly failures = new Map<string, number[]>();
  constructor(readonly rate: Rate) {}

  private recent(ip: string, now: number): number[] {
    const key = plainAddress(ip);
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.rate.windowMs);
    if (list.length) this.failures.set(key, list); else this.failures.delete(key);
    return list;
  }

  blocked(ip: string, now = Date.now()): boolean {
    return this.retryAfterMs(ip, now) > 0;
  }

  /** How long until this address may try AUTH again: 0 when it is not blocked. */
  retryAfterMs(ip: string, now = Date.now()): number {
    const list = this.recent(ip, now);
    if (list.length < this.rate.count) return 0;
    return list[list.length - this.rate.count]! + this.rate.windowMs - now;
  }

  /** Counts a failure; returns how long the address is now blocked for (0: not blocked yet). */
  fail(ip: string, now = Date.now()): number {
    const key = plainAddress(ip);
    const list = this.recent(key, now);
    list.push(now);
    if (!this.failures.has(key) && this.failures.size >= MAX_TRACKED) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(key, list.slice(-this.rate.count));
    return this.retryAfterMs(key, now);
  }

  /** Forgets the failures of these addresses ('ALL': of every address); returns those that had any. */
  unblock(ips: readonly string[] | 'ALL', now = Date.now()): string[] {
    const keys = ips === 'ALL' ? [...this.failures.keys()] : ips.map(plainAddress);
    const had = keys.filter((k) => this.recent(k, now).length > 0);
    for (const k of keys) this.failures.delete(k);
    return had;
  }
}
