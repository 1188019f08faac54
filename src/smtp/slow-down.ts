// When an upstream says it gets too much ("421 4.7.0 Too many connections",
// "451 4.7.1 rate limit exceeded"), the route backs off by itself: half the
// connections (down to one) and a pause before its next attempt, then
// recovers one connection at a time as mail goes through again (additive
// increase, multiplicative decrease, as TCP does with congestion).

const CODES = new Set(['421', '432', '451']);
const ENHANCED = new Set(['4.7.0', '4.3.2', '4.4.5']);
const TEXT = /too many|\brate\b|ratelimit|throttl|try again later/i;

/**
 * Is this an upstream's "slow down"? Only a 421, 432 or 451 reply counts, one that says so in
 * words or with 4.7.0, 4.3.2 or 4.4.5. The caller passes only replies to the greeting, EHLO,
 * AUTH or MAIL FROM: later ones (RCPT greylisting, "try again later") concern one message.
 */
export function isThrottleReply(reply: string): boolean {
  const m = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/s.exec(reply.trim());
  if (!m || !CODES.has(m[1]!)) return false;
  return ENHANCED.has(m[2] ?? '') || TEXT.test(m[3]!);
}

export interface SlowDownOptions {
  /** The first pause after a "slow down"; each one in a row doubles it, up to maxPauseMs. */
  readonly pauseMs: number;
  readonly maxPauseMs: number;
  readonly now?: () => number;
}

export class SlowDown {
  /** Connections the route may have open now: the configured concurrency, less while throttled. */
  limit: number;
  private pauseMs = 0;
  private pausedUntil = 0;
  private successes = 0;
  private readonly now: () => number;

  constructor(readonly max: number, private readonly opts: SlowDownOptions = { pauseMs: 2000, maxPauseMs: 60_000 }) {
    this.limit = max;
    this.now = opts.now ?? Date.now;
  }

  /** The upstream asked us to slow down. */
  throttled(): void {
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    this.pauseMs = this.pauseMs ? Math.min(this.opts.maxPauseMs, this.pauseMs * 2) : this.opts.pauseMs;
    this.pausedUntil = this.now() + this.pauseMs;
    this.successes = 0;
  }

  /** A message went through: after `limit` of them in a row, one more connection and a shorter next pause. */
  succeeded(): void {
    if (this.limit >= this.max && this.pauseMs === 0) return;
    if (++this.successes < this.limit) return;
    this.successes = 0;
    this.limit = Math.min(this.max, this.limit + 1);
    this.pauseMs = this.pauseMs / 2 < this.opts.pauseMs ? 0 : this.pauseMs / 2;
  }

  /** How long the next attempt on the route must wait (0 = go). */
  waitMs(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }
}
