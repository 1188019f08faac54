// Reading many queue files without running out of file descriptors. Every
// pass over the spool (list, recovery at start, the rescan, the CLI's bulk
// verbs) opens at most OPEN_AT_ONCE files at a time, whatever the size of the
// queue, and retries a file whose open failed for want of a descriptor or for
// a moment's contention (EMFILE, ENFILE, EAGAIN, EBUSY) before giving up on it
// with its real error code. Unbounded, a large queue lost messages from
// listings under the default descriptor limit (bench/NOTES.md).

/** Files opened at once by one pass over the spool. */
export const OPEN_AT_ONCE = 32;

/** Errors that say "not now", not "never": out of descriptors (process or system), busy. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']);

/** Errors that mean this account may not read the file: the only ones worth advice about owners. */
const PERMISSION = new Set(['EACCES', 'EPERM']);

export function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export function isTransient(e: unknown): boolean {
  return TRANSIENT.has(errorCode(e) ?? '');
}

export function isPermission(e: unknown): boolean {
  return PERMISSION.has(errorCode(e) ?? '');
}

export interface RetryOptions {
  /** Tries in all, the first included. */
  readonly tries?: number;
  /** The first pause; it doubles (with some jitter) up to maxDelayMs. */
  readonly delayMs?: number;
  readonly maxDelayMs?: number;
}

/**
 * Runs `fn`, and again after a short pause while it fails with a transient
 * error (some 3 s in all by default); any other error, or the last transient
 * one, is thrown as it is.
 */
export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const tries = opts.tries ?? 10;
  const max = opts.maxDelayMs ?? 1000;
  let delay = opts.delayMs ?? 10;
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (e) {
      if (n >= tries || !isTransient(e)) throw e;
      // jitter, so that workers that failed together do not all come back together
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
      delay = Math.min(max, delay * 2);
    }
  }
}

/**
 * `fn` applied to every item, at most `limit` at once; the results in the order
 * of `items`. A rejection stops the pass (no new items are started) and is
 * passed on once the calls under way have ended; `fn` catches what it can handle.
 */
export async function mapBounded<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>, limit = OPEN_AT_ONCE): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try { out[i] = await fn(items[i]!, i); } catch (e) { failed = true; throw e; }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return out;
}
