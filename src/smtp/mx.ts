// Where direct MX delivery for a domain goes: the MX hosts in the order to try
// them (RFC 5321 §5.1), or why there are none. DNS look-ups only; connecting and
// resolving the hosts' addresses is the smtp transport's job. Every DNS outcome
// is one of four values, so callers never see a resolver exception.
import { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import type { MxRecord } from 'node:dns';

export interface MxHost { readonly host: string; readonly preference: number }

export type MxResult =
  /** Ordered by preference, equal preferences shuffled. `implicit`: no MX records, the domain itself is the host (RFC 5321 §5.1 "implicit MX"). */
  | { readonly kind: 'hosts'; readonly hosts: readonly MxHost[]; readonly implicit: boolean }
  /** RFC 7505 null MX ("0 ."): the domain accepts no mail. Bounce 5.1.10. */
  | { readonly kind: 'nullMx'; readonly detail: string }
  /** NXDOMAIN, or neither MX nor A/AAAA records. Bounce 5.1.2. */
  | { readonly kind: 'notFound'; readonly detail: string }
  /** SERVFAIL, timeout, refused, or anything we cannot tell apart from those. Defer 4.4.3. */
  | { readonly kind: 'tempfail'; readonly detail: string };

/** The part of node:dns/promises `Resolver` that MX delivery uses (TXT: MTA-STS); tests may pass a fake. Failures reject with node's DNS error codes. */
export interface MxResolver {
  resolveMx(domain: string): Promise<MxRecord[]>;
  resolve4(domain: string): Promise<string[]>;
  resolve6(domain: string): Promise<string[]>;
  resolveTxt(domain: string): Promise<string[][]>;
}

/** Per-try timeout and tries: a nameserver that never answers fails the look-up after both tries, one that refuses at once (bench/NOTES.md). */
const TIMEOUT_MS = 2000;
const TRIES = 2;

/**
 * A resolver for MX look-ups. [] uses the system's nameservers (/etc/resolv.conf);
 * otherwise the given "ip" or "ip:port" / "[ipv6]:port" servers, in order.
 * Throws on a malformed server address, which config validation should catch first.
 */
export function resolverFor(nameservers: readonly string[]): MxResolver & Pick<Resolver, 'resolveTxt'> {
  const resolver = new Resolver({ timeout: TIMEOUT_MS, tries: TRIES });
  if (nameservers.length > 0) resolver.setServers([...nameservers]);
  return resolver;
}

let systemResolver: MxResolver | undefined;

/**
 * The MX hosts for `domain` (the part after "@"), or why there are none.
 * `rand` (0 <= x < 1) shuffles hosts of equal preference; tests inject it.
 */
export async function lookupMx(domain: string, resolver?: MxResolver, rand: () => number = Math.random): Promise<MxResult> {
  const literal = addressLiteral(domain);
  if (literal !== undefined) return literal;

  // SMTPUTF8 domains travel as U-labels; DNS knows only A-labels (RFC 5890).
  const name = domainToASCII(domain.replace(/\.$/, '')).toLowerCase();
  if (!name || name.startsWith('.') || name.includes('..')) {
    return { kind: 'notFound', detail: `Host or domain name not found. Name service error for name=${domain} type=MX: Malformed domain name` };
  }
  const dns = resolver ?? (systemResolver ??= resolverFor([]));

  let records: MxRecord[];
  try {
    records = await dns.resolveMx(name);
  } catch (err) {
    const kind = classify(err);
    if (kind === 'nodata') return implicitMx(name, dns);
    return failure(kind, name, 'MX');
  }
  if (records.length === 0) return implicitMx(name, dns);

  // c-ares gives the root exchange "." as ''. RFC 7505 §3: a null MX is the only
  // record; a domain that also lists real hosts is misconfigured, and the real
  // hosts are still the best place to try.
  const real = records.filter((r) => r.exchange !== '' && r.exchange !== '.');
  if (real.length === 0) {
    return { kind: 'nullMx', detail: `Domain ${name} does not accept mail (nullMX)` };
  }
  const hosts = real.map((r) => ({ host: r.exchange.replace(/\.$/, '').toLowerCase(), preference: r.priority }));
  return { kind: 'hosts', hosts: orderByPreference(hosts, rand), implicit: false };
}

/** RFC 5321 §5.1: lowest preference first, and hosts of equal preference in random order to spread the load. */
export function orderByPreference(hosts: readonly MxHost[], rand: () => number = Math.random): MxHost[] {
  const shuffled = [...hosts];
  for (let i = shuffled.length - 1; i > 0; i--) { // Fisher-Yates
    const j = Math.min(i, Math.floor(rand() * (i + 1)));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled.sort((a, b) => a.preference - b.preference); // Array#sort is stable: the shuffle survives within a preference
}

/** "[192.0.2.1]" and "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3) need no DNS. */
function addressLiteral(domain: string): MxResult | undefined {
  if (!domain.startsWith('[')) return undefined;
  const inner = domain.endsWith(']') ? domain.slice(1, -1) : '';
  const ip = /^ipv6:/i.test(inner) ? inner.slice(5) : inner;
  const ok = inner === ip ? isIPv4(ip) : isIPv6(ip);
  if (!ok) return { kind: 'notFound', detail: `Host or domain name not found. Malformed address literal ${domain}` };
  return { kind: 'hosts', hosts: [{ host: ip.toLowerCase(), preference: 0 }], implicit: true };
}

/** RFC 5321 §5.1: no MX records, so the domain is its own mail host if it has an address. */
async function implicitMx(name: string, dns: MxResolver): Promise<MxResult> {
  const [v4, v6] = await Promise.allSettled([dns.resolve4(name), dns.resolve6(name)]);
  const found = (r: PromiseSettledResult<string[]>) => r.status === 'fulfilled' && r.value.length > 0;
  if (found(v4) || found(v6)) return { kind: 'hosts', hosts: [{ host: name, preference: 0 }], implicit: true };
  // Neither family has an address. Only a definite "no" from both is a bounce;
  // a failure on either side may be hiding the address (Postfix defers too).
  const k4 = v4.status === 'fulfilled' ? 'nodata' : classify(v4.reason);
  const k6 = v6.status === 'fulfilled' ? 'nodata' : classify(v6.reason);
  if (k4 === 'tempfail') return failure('tempfail', name, 'A');
  if (k6 === 'tempfail') return failure('tempfail', name, 'AAAA');
  return failure(k6, name, 'AAAA');
}

type Kind = 'nodata' | 'nxdomain' | 'tempfail';

/**
 * node's c-ares error codes (node:dns "Error codes"): ENOTFOUND is NXDOMAIN,
 * ENODATA is NOERROR without records of the type, EBADNAME a name DNS cannot
 * carry. Everything else (ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, EFORMERR,
 * EBADRESP, ENOTIMP, ECANCELLED, ...) says nothing about the domain: temporary.
 */
function classify(err: unknown): Kind {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENODATA') return 'nodata';
  if (code === 'ENOTFOUND' || code === 'EBADNAME') return 'nxdomain';
  return 'tempfail';
}

/** Postfix's wording (src/dns/dns_strerror.c), so people and log tools find what they know. */
function failure(kind: Kind, name: string, type: string): MxResult {
  const prefix = `Host or domain name not found. Name service error for name=${name} type=${type}: `;
  switch (kind) {
    case 'nxdomain': return { kind: 'notFound', detail: prefix + 'Host not found' };
    case 'nodata': return { kind: 'notFound', detail: prefix + 'Host found but no data record of requested type' };
    case 'tempfail': return { kind: 'tempfail', detail: prefix + 'Host not found, try again' };
  }
}
