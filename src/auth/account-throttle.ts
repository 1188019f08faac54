// Failed-AUTH throttling per account, from any address (issue 21): guesses spread over
// many client addresses, each under limits.auth_failures, still meet `rate` per account.
// Over it, the account may log in only from addresses that logged in as it in the last
// 30 days ("known"); from anywhere else it gets 454 4.7.0 before any password check, so
// the real user keeps working where they work and a guesser learns nothing, not even a
// right password. The block ends when the oldest counted failure leaves the window, or
// with `smarthost auth unblock --user NAME`. In memory here, like the per-address counts; in
// one table for every node on a shared store (queue/pg-limits-auth.ts).
import type { Rate } from '../config/units.js';
import { KNOWN_PLACE_MS as KNOWN_MS, KNOWN_PLACES_PER_ACCOUNT as KNOWN_PER_ACCOUNT, loginPlace } from '../mail/client-address.js';
import type { Maybe } from './throttle.js';

const MAX_TRACKED = 100_000; // accounts, bounds memory under an attack on many names

export { loginPlace };

/** Keeps at most `max` keys: the oldest inserted goes first. */
function bound<V>(map: Map<string, V>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) return;
    map.delete(oldest);
  }
}

/** Failed-AUTH counts per account and the places it logs in from; the cluster-wide one rejects when it cannot ask its store. */
export interface AccountFailureCounts {
  readonly rate: Rate;
  /** How long the account stays closed to unknown addresses: 0 when it is not over its budget. */
  blockedForMs(account: string): Maybe<number>;
  /** How long this address must wait to log in as this account: 0 when it may try now. */
  retryAfterMs(account: string, ip: string): Maybe<number>;
  /** Counts a failure; returns how long the account is now closed to unknown addresses (0: under its budget). */
  fail(account: string): Maybe<number>;
  /** A good login: this address is known for this account from now on (for 30 days). */
  succeeded(account: string, ip: string): Maybe<void>;
  /** Forgets the failures of these accounts ('ALL': of every account); returns those that had any. Known addresses stay. */
  unblock(accounts: readonly string[] | 'ALL'): Maybe<string[]>;
}

export class AccountThrottle implements AccountFailureCounts {
  private readonly failures = new Map<string, number[]>();
  private readonly known = new Map<string, Map<string, number>>();
  constructor(readonly rate: Rate) {}

  private recent(account: string, now: number): number[] {
    const list = (this.failures.get(account) ?? []).filter((t) => now - t < this.rate.windowMs);
    if (list.length) this.failures.set(account, list); else this.failures.delete(account);
    return list;
  }

  /** How long the account stays closed to unknown addresses: 0 when it is not over its budget. */
  blockedForMs(account: string, now = Date.now()): number {
    const list = this.recent(account, now);
    if (list.length < this.rate.count) return 0;
    return list[list.length - this.rate.count]! + this.rate.windowMs - now;
  }

  /** How long this address must wait to log in as this account: 0 when it may try now. */
  retryAfterMs(account: string, ip: string, now = Date.now()): number {
    const wait = this.blockedForMs(account, now);
    if (wait === 0) return 0;
    const seen = this.known.get(account)?.get(loginPlace(ip));
    return seen !== undefined && now - seen < KNOWN_MS ? 0 : wait;
  }

  /** Counts a failure; returns how long the account is now closed to unknown addresses (0: under its budget). */
  fail(account: string, now = Date.now()): number {
    const list = this.recent(account, now);
    list.push(now);
    this.failures.delete(account); // re-inserted last: the map's order is the eviction order
    this.failures.set(account, list.slice(-this.rate.count));
    bound(this.failures, MAX_TRACKED);
    return this.blockedForMs(account, now);
  }

  /** A good login: this address is known for this account from now on (for 30 days). */
  succeeded(account: string, ip: string, now = Date.now()): void {
    const places = this.known.get(account) ?? new Map<string, number>();
    const place = loginPlace(ip);
    places.delete(place);
    places.set(place, now);
    bound(places, KNOWN_PER_ACCOUNT);
    this.known.delete(account);
    this.known.set(account, places);
    bound(this.known, MAX_TRACKED);
  }

  /** Forgets the failures of these accounts ('ALL': of every account); returns those that had any. Known addresses stay. */
  unblock(accounts: readonly string[] | 'ALL', now = Date.now()): string[] {
    const keys = accounts === 'ALL' ? [...this.failures.keys()] : [...accounts];
    const had = keys.filter((k) => this.recent(k, now).length > 0);
    for (const k of keys) this.failures.delete(k);
    return had;
  }
}
