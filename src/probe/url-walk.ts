// A route with several URLs (`url` as a list, then `fallback_urls`): the probe walks each one
// in the order delivery tries them, and says which one mail would use first. Delivery takes
// the first primary URL that works and falls back only when every primary one defers, so the
// route is healthy only when a primary URL passes.
import type { UpstreamConfig, UpstreamUrl } from '../config/types.js';
import { probe, type Lookup, type ProbeOptions, type ProbeReport, type ProbeTarget } from './steps.js';

export type UrlRole = 'primary' | 'fallback';

export interface TargetReport extends ProbeReport { readonly role: UrlRole }

export interface RouteReport {
  /** At least one primary URL passed every step. */
  readonly ok: boolean;
  readonly route: string;
  /** The URL mail would go to first: the first one (primary, then fallback) that passed; absent when none did. */
  readonly first?: string;
  readonly firstRole?: UrlRole;
  readonly targets: readonly TargetReport[];
}

/** Every URL of the target in delivery order; one entry for an upstream with a single URL. */
export function routeUrls(u: UpstreamConfig): Array<{ role: UrlRole; url: UpstreamUrl }> {
  const own: UpstreamUrl = { url: u.url, scheme: u.scheme, host: u.host, port: u.port };
  const primary = u.urls?.length ? u.urls : [own];
  return [...primary.map((url) => ({ role: 'primary' as const, url })), ...(u.fallbackUrls ?? []).map((url) => ({ role: 'fallback' as const, url }))];
}

/** True when the probe has more than one URL to walk (and prints one section per URL). */
export function hasSeveralUrls(u: UpstreamConfig): boolean {
  return routeUrls(u).length > 1;
}

/** The upstream as delivery uses it for one of its URLs: same tls, credentials and limits. */
function forUrl(u: UpstreamConfig, url: UpstreamUrl): UpstreamConfig {
  return { ...u, url: url.url, scheme: url.scheme, host: url.host, port: url.port };
}

/** Walks every URL one after another (not in parallel: an OAuth2 token refresh is shared, and output stays in order). */
export async function probeRoute(target: ProbeTarget, opts: ProbeOptions, lookup?: Lookup): Promise<RouteReport> {
  const targets: TargetReport[] = [];
  // --send-test sends one message: through the first URL that gets that far, the one mail would use
  const { sendTest: _, ...withoutTest } = opts;
  for (const { role, url } of routeUrls(target.upstream)) {
    const one: ProbeTarget = { ...target, upstream: forUrl(target.upstream, url) };
    const sent = targets.some((t) => t.ok);
    targets.push({ ...(await probe(one, sent ? withoutTest : opts, lookup)), role });
  }
  const first = targets.find((t) => t.ok);
  return {
    ok: targets.some((t) => t.ok && t.role === 'primary'), route: target.name,
    ...(first ? { first: first.target, firstRole: first.role } : {}), targets,
  };
}
