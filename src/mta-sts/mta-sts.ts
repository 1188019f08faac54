// Which MTA-STS policy applies to a domain right now (RFC 8461 §5.1): the TXT
// id is looked up at each new connection; a new id fetches the policy, and a
// policy past half its max_age is fetched again. A failed fetch, or no record
// at all, leaves a cached policy in force until it expires. What happens is
// reported as events (the delivery thread has no log of its own).
import { cacheDir, loadPolicy, removePolicy, savePolicy, type CachedPolicy } from './cache.js';
import { fetchStsPolicy, lookupStsRecord, type FetchOutcome, type FetchResult, type StsResolver } from './fetch.js';
import { describePolicy } from './sts-policy.js';

export type StsEvent =
  /** A policy fetch and its outcome (also the ones that failed and what stays in force). */
  | { readonly kind: 'fetch'; readonly domain: string; readonly outcome: FetchOutcome; readonly text: string }
  /** enforce: an attempt deferred because no MX host matched (mx) or none passed verified TLS (tls). */
  | { readonly kind: 'refused'; readonly domain: string; readonly why: 'mx' | 'tls'; readonly text: string }
  /** testing: what enforce would have refused; the mail went on as [mx] tls allows. */
  | { readonly kind: 'testing'; readonly domain: string; readonly why: 'mx' | 'tls'; readonly text: string }
  | { readonly kind: 'warning'; readonly domain: string; readonly text: string };

export interface MtaStsOptions {
  readonly resolver: StsResolver;
  readonly dataDir: string;
  readonly onEvent: (e: StsEvent) => void;
  /** Tests: a scripted fetch and clock. */
  readonly fetch?: (domain: string, resolver: StsResolver) => Promise<FetchResult>;
  readonly now?: () => number;
}

/** After a failed fetch, the same id is not fetched again for this long (mox backs off 5 minutes too). */
export const RETRY_AFTER_MS = 5 * 60_000;

/** "2026-12-08T05:15:11Z", for log lines and `route test`. */
export const stsTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class MtaSts {
  private readonly dir: string;
  private readonly now: () => number;
  private readonly memory = new Map<string, CachedPolicy | undefined>();
  private readonly inflight = new Map<string, Promise<CachedPolicy | undefined>>();
  private readonly failed = new Map<string, { id: string; at: number }>();

  constructor(private readonly opts: MtaStsOptions) {
    this.dir = cacheDir(opts.dataDir);
    this.now = opts.now ?? Date.now;
  }

  report(e: StsEvent): void { this.opts.onEvent(e); }

  /** The unexpired policy for `domain` (mode none included), or undefined: deliver as if it had none. Never throws. */
  policyFor(domain: string): Promise<CachedPolicy | undefined> {
    let p = this.inflight.get(domain);
    if (!p) {
      p = this.resolve(domain).finally(() => this.inflight.delete(domain));
      this.inflight.set(domain, p);
    }
    return p;
  }

  private async cached(domain: string): Promise<CachedPolicy | undefined> {
    const p = this.memory.has(domain) ? this.memory.get(domain) : await loadPolicy(this.dir, domain);
    if (p && p.expiresAt <= this.now()) {
      this.memory.set(domain, undefined);
      await removePolicy(this.dir, domain).catch(() => undefined);
      return undefined;
    }
    this.memory.set(domain, p);
    return p;
  }

  private async resolve(domain: string): Promise<CachedPolicy | undefined> {
    const [cached, record] = await Promise.all([this.cached(domain), lookupStsRecord(domain, this.opts.resolver)]);
    if (record.kind !== 'id') return cached; // no live policy (or DNS trouble): the cached one applies (§5.1)
    const now = this.now();
    if (cached && cached.id === record.id && now < cached.fetchedAt + (cached.expiresAt - cached.fetchedAt) / 2) return cached;
    const failed = this.failed.get(domain);
    if (failed && failed.id === record.id && now - failed.at < RETRY_AFTER_MS) return cached;
    const r = await (this.opts.fetch ?? fetchStsPolicy)(domain, this.opts.resolver);
    if (r.outcome !== 'ok') {
      this.failed.set(domain, { id: record.id, at: now });
      const stays = cached
        ? `the cached policy (id ${cached.id}, mode ${cached.mode}) stays in force until ${stsTime(cached.expiresAt)}`
        : 'mail to it is delivered as if it had no policy';
      this.report({ kind: 'fetch', domain, outcome: r.outcome, text: `MTA-STS policy of ${domain} (id ${record.id}) not used: ${r.detail}; ${stays}` });
      return cached;
    }
    this.failed.delete(domain);
    const next: CachedPolicy = Object.freeze({ domain, id: record.id, ...r.policy, fetchedAt: now, expiresAt: now + r.policy.maxAge * 1000 });
    this.memory.set(domain, next);
    const change = !cached ? '' : cached.id === next.id ? ', refreshed' : `, replaces id ${cached.id}`;
    this.report({ kind: 'fetch', domain, outcome: 'ok', text: `${describePolicy(domain, next)} fetched, max_age ${next.maxAge}s, cached until ${stsTime(next.expiresAt)}${change}` });
    await savePolicy(this.dir, next).catch((e: Error) => this.report({ kind: 'warning', domain, text: `MTA-STS policy of ${domain} cannot be saved in ${this.dir} (${e.message}); it applies until smarthost restarts` }));
    return next;
  }
}
