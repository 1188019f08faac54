// Discovery of one domain's MTA-STS policy (RFC 8461 §3): the `_mta-sts` TXT
// record, then https://mta-sts.DOMAIN/.well-known/mta-sts.txt. Both names are
// resolved by the delivery resolver ([mx] nameservers), the one that finds the
// MX hosts the policy speaks about. The HTTPS peer must have a certificate for
// mta-sts.DOMAIN from a trusted CA (§3.3); node:https because fetch() cannot
// be given our resolver, and because every limit below must hold.
import https from 'node:https';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { parseStsPolicy, parseStsRecord, type RecordResult, type StsPolicy } from './sts-policy.js';

/** The look-ups MTA-STS needs; node:dns/promises `Resolver` has them. */
export interface StsResolver {
  resolveTxt(name: string): Promise<string[][]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** §3.3 leaves the limits to the sender; 64 KB as mox and mailauth's users do, far above any real policy. */
export const MAX_POLICY_BYTES = 65_536;
/** A policy host slower than this holds the first delivery to its domain no longer (KumoMTA uses 20 s too). */
export const FETCH_TIMEOUT_MS = 20_000;

export type RecordLookup = RecordResult | { readonly kind: 'tempfail'; readonly detail: string };

/** The TXT record's id, no record, or DNS trouble (which must not be read as "no policy" over a cached one). */
export async function lookupStsRecord(domain: string, resolver: StsResolver): Promise<RecordLookup> {
  const name = `_mta-sts.${domain}`;
  try {
    return parseStsRecord(await resolver.resolveTxt(name));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { kind: 'none', detail: `no TXT record at ${name}` };
    return { kind: 'tempfail', detail: `TXT look-up of ${name} failed (${code ?? (e as Error).message})` };
  }
}

/** ok; invalid: the file is not a policy (syntax, media type, size); http_error: not a 200; unreachable: DNS, connection, TLS or timeout. */
export type FetchOutcome = 'ok' | 'invalid' | 'http_error' | 'unreachable';
export type FetchResult =
  | { readonly outcome: 'ok'; readonly policy: StsPolicy }
  | { readonly outcome: Exclude<FetchOutcome, 'ok'>; readonly detail: string };

export const policyUrl = (domain: string) => `https://mta-sts.${domain}/.well-known/mta-sts.txt`;

/** A `lookup` for node:https that gives our resolver's answers; Node asks with `all` when it may try several (autoSelectFamily). */
function answerWith(addresses: readonly LookupAddress[]): LookupFunction {
  return (_name, opts, cb) => (opts.all ? cb(null, [...addresses]) : cb(null, addresses[0]!.address, addresses[0]!.family));
}

/** GET the policy file once: no redirects, status 200 only, text/plain, at most 64 KB, within the timeout. */
export async function fetchStsPolicy(domain: string, resolver: StsResolver, timeoutMs = FETCH_TIMEOUT_MS): Promise<FetchResult> {
  const host = `mta-sts.${domain}`;
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const addresses: LookupAddress[] = [
    ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
  ];
  if (!addresses.length) return { outcome: 'unreachable', detail: `${host} has no address` };
  return new Promise<FetchResult>((resolve) => {
    let settled = false;
    const done = (r: FetchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = https.get(policyUrl(domain), {
      agent: false, // one request per policy and max_age: nothing to keep alive
      headers: { 'user-agent': 'smarthost' },
      lookup: answerWith(addresses),
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) return done({ outcome: 'http_error', detail: `${policyUrl(domain)} answered ${status} with a redirect to ${res.headers.location ?? '(no Location)'}, which RFC 8461 §3.3 forbids following` });
      if (status !== 200) return done({ outcome: 'http_error', detail: `${policyUrl(domain)} answered HTTP ${status}, not 200` });
      const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'text/plain') return done({ outcome: 'invalid', detail: `${policyUrl(domain)} is served as "${type || '(no Content-Type)'}", not text/plain` });
      const chunks: Buffer[] = [];
      let size = 0;
      const tooLarge = () => done({ outcome: 'invalid', detail: `${policyUrl(domain)} is larger than ${MAX_POLICY_BYTES / 1024} KB` });
      if (Number(res.headers['content-length'] ?? 0) > MAX_POLICY_BYTES) return tooLarge();
      res.on('data', (c: Buffer) => { size += c.length; if (size > MAX_POLICY_BYTES) tooLarge(); else chunks.push(c); });
      res.on('end', () => {
        const parsed = parseStsPolicy(Buffer.concat(chunks).toString('utf8'));
        done('policy' in parsed ? { outcome: 'ok', policy: parsed.policy } : { outcome: 'invalid', detail: `${policyUrl(domain)} is not a valid policy: ${parsed.error}` });
      });
      res.on('error', (e) => done({ outcome: 'unreachable', detail: `${policyUrl(domain)}: ${e.message}` }));
    });
    req.on('error', (e) => done({ outcome: 'unreachable', detail: `${policyUrl(domain)}: ${e.message.replace(/\s*\n\s*/g, ' ')}` }));
    const timer = setTimeout(() => done({ outcome: 'unreachable', detail: `${policyUrl(domain)}: no answer within ${timeoutMs / 1000} s` }), timeoutMs);
  });
}
