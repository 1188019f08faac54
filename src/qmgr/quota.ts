// Recipient quotas per route ("10000/1d"), counted the way providers count them: recipients
// over a rolling window (Microsoft: per 24 hours from the first counted message; Google:
// "a rolling 24-hour period, not a set time of day"), not per calendar day. A calendar day
// would hand out a fresh quota at midnight while the provider still counts the evening before.
// Pure bookkeeping on an injectable clock; quota-gate.ts applies it and persists it.

/** Recipients counted at about one time; `at` only moves forward when more are merged in. */
interface Entry { at: number; n: number }

/** What the quota file holds: per route key ("relay", "route:m365"), [time, recipients] oldest first. */
export interface QuotaState { readonly version: 1; readonly routes: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>> }

/** Counted against every route (a quota file that could not be read: everything is used up for one window). */
export const EVERY_ROUTE = '*';
const FULL = Number.MAX_SAFE_INTEGER;

/**
 * Entries per window. Recipients counted within windowMs/SLICES of the last entry join it and
 * move its time forward, so a route's history stays at about this many entries however much it
 * sends. Moving forward only ever counts a recipient longer than it should, never shorter.
 */
const SLICES = 96;

export interface Taken {
  /** How many of the asked-for recipients may go now (the first ones). */
  readonly granted: number;
  /** When fewer than asked were granted: the earliest time one more fits. */
  readonly freesAt?: number;
  /** Hand back the ones that were not sent after all (once). */
  giveBack(n: number): void;
}

export class QuotaLedger {
  private readonly routes = new Map<string, Entry[]>();

  constructor(state?: QuotaState) {
    for (const [key, list] of Object.entries(state?.routes ?? {})) {
      this.routes.set(key, list.filter(([at, n]) => Number.isFinite(at) && n > 0).map(([at, n]) => ({ at, n })));
    }
  }

  /** Everything counted as used up from `at` on for one window (an unreadable quota file). */
  static usedUpSince(at: number): QuotaLedger {
    return new QuotaLedger({ version: 1, routes: { [EVERY_ROUTE]: [[at, FULL]] } });
  }

  /** Recipients counted for `key` in the window that ends at `now`. */
  used(key: string, windowMs: number, now: number): number {
    return this.live(key, windowMs, now).reduce((sum, e) => sum + e.n, 0);
  }

  /** Counts up to `n` recipients for `key` at `now`, as many as the quota has room for. */
  take(key: string, quota: { readonly count: number; readonly windowMs: number }, n: number, now: number): Taken {
    this.prune(key, quota.windowMs, now);
    const used = this.used(key, quota.windowMs, now);
    const granted = Math.max(0, Math.min(n, quota.count - used));
    const entry = granted > 0 ? this.count(key, granted, quota.windowMs, now) : undefined;
    let open = entry !== undefined;
    const giveBack = (k: number) => {
      if (!open || !entry) return;
      open = false;
      entry.n -= Math.min(k, granted);
    };
    if (granted === n) return { granted, giveBack };
    return { granted, freesAt: this.freesAt(key, quota, now, used + granted - quota.count), giveBack };
  }

  /** The earliest time the entries leaving the window free more than `over` places. */
  private freesAt(key: string, quota: { readonly windowMs: number }, now: number, over: number): number {
    let freed = 0;
    for (const e of this.live(key, quota.windowMs, now).sort((a, b) => a.at - b.at)) {
      freed += e.n;
      if (freed > over) return e.at + quota.windowMs;
    }
    return now + quota.windowMs; // not reached: what is live always frees enough
  }

  private count(key: string, n: number, windowMs: number, now: number): Entry {
    const list = this.routes.get(key) ?? [];
    this.routes.set(key, list);
    const last = list.at(-1);
    if (last && now - last.at <= windowMs / SLICES && now >= last.at) {
      last.n += n;
      last.at = now;
      return last;
    }
    const entry = { at: now, n };
    list.push(entry);
    return entry;
  }

  /** This route's entries and the every-route ones still inside the window. */
  private live(key: string, windowMs: number, now: number): Entry[] {
    return [...this.routes.get(key) ?? [], ...this.routes.get(EVERY_ROUTE) ?? []].filter((e) => e.at + windowMs > now && e.n > 0);
  }

  /** Forgets this route's entries that left its window (the every-route entry stays: other windows may be longer). */
  private prune(key: string, windowMs: number, now: number): void {
    const list = this.routes.get(key);
    if (list) this.routes.set(key, list.filter((e) => e.at + windowMs > now && e.n > 0));
  }

  toJSON(): QuotaState {
    const routes: Record<string, Array<[number, number]>> = {};
    for (const [key, list] of this.routes) {
      const kept = list.filter((e) => e.n > 0);
      if (kept.length) routes[key] = kept.map((e) => [e.at, e.n]);
    }
    return { version: 1, routes };
  }
}
