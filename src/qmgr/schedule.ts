// When to try a deferred recipient again: exponential backoff from
// queue.retry_min to queue.retry_max, with jitter so that mail deferred
// together does not come back together (chasquid nextDelay). Pure.

/** Delay before attempt number `attempts + 1`, given `attempts` failed attempts so far (>= 1). */
export function retryDelay(attempts: number, minMs: number, maxMs: number, rand: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  const jittered = base * (0.9 + 0.2 * rand()); // ±10%
  return Math.round(Math.max(minMs, Math.min(maxMs, jittered)));
}

/** True when a message that arrived at `arrivedMs` has been in the queue for `lifetimeMs` or more. */
export function expired(arrivedMs: number, lifetimeMs: number, nowMs: number): boolean {
  return nowMs - arrivedMs >= lifetimeMs;
}

/** Postfix's delay figures: seconds, 2 significant decimals under 10 s, fewer above, "0" for nothing. */
export function formatDelay(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s >= 100) return String(Math.round(s));
  if (s >= 10) return String(Math.round(s * 10) / 10);
  return String(Math.round(s * 100) / 100);
}
