// Which addresses to try, in order, for a destination: a URL host is resolved
// as every program resolves it (/etc/hosts, then DNS) and never MX-looked-up;
// direct delivery walks the MX hosts by preference, each one's addresses.
import dns from 'node:dns/promises';
import net from 'node:net';
import type { CachedPolicy } from '../mta-sts/cache.js';
import type { MtaSts } from '../mta-sts/mta-sts.js';
import { allowedBy, describePolicy, stsName } from '../mta-sts/sts-policy.js';
import { lookupMx, type MxHost, type MxResolver } from './mx.js';
import { lookupFailure, policyFailure } from './classify.js';
import type { Failure } from './failure.js';
import type { Peer } from './upstream-policy.js';

/** Postfix smtp_mx_address_limit: enough to get past a dead host or two, not a whole farm. */
const MAX_PEERS = 5;

export type PeerList =
  /** `sts`: the domain's MTA-STS policy (enforce or testing) that the connections must meet. */
  | { readonly peers: readonly Peer[]; readonly sts?: CachedPolicy }
  | { readonly failure: Failure };

export async function upstreamPeers(host: string, port: number): Promise<PeerList> {
  if (net.isIP(host)) return { peers: [{ host, ip: host, port }] };
  try {
    const addrs = await dns.lookup(host, { all: true });
    return { peers: addrs.slice(0, MAX_PEERS).map((a) => ({ host, ip: a.address, port })) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { failure: lookupFailure('noHost', `Host or domain name not found. Name service error for name=${host} type=A: ${code === 'ENOTFOUND' ? 'Host not found' : code ?? (e as Error).message}`) };
  }
}

/** The MX hosts of `domain` by preference and their addresses; under an MTA-STS policy in mode enforce, only the hosts it allows (RFC 8461 §4.1). */
export async function mxPeers(domain: string, port: number, resolver: MxResolver, sts?: MtaSts): Promise<PeerList> {
  const ascii = stsName(domain);
  const [mx, policy] = await Promise.all([lookupMx(domain, resolver), sts && ascii ? sts.policyFor(ascii) : undefined]);
  if (mx.kind !== 'hosts') {
    return { failure: lookupFailure(mx.kind, mx.detail) };
  }
  const active = policy && policy.mode !== 'none' ? policy : undefined;
  let hosts: readonly MxHost[] = mx.hosts;
  const outside = active ? hosts.filter((h) => allowedBy(h.host, active.mx) === undefined).map((h) => h.host) : [];
  if (active && outside.length) {
    const what = `${describePolicy(domain, active)} does not allow MX host${outside.length > 1 ? 's' : ''} ${outside.join(', ')}`;
    if (active.mode === 'testing') sts!.report({ kind: 'testing', domain, why: 'mx', text: `${what}; enforce would refuse ${outside.length > 1 ? 'them' : 'it'}, testing only reports it` });
    else hosts = hosts.filter((h) => allowedBy(h.host, active.mx) !== undefined);
    if (!hosts.length) {
      sts!.report({ kind: 'refused', domain, why: 'mx', text: what });
      return { failure: policyFailure(`${what}; delivery deferred until the policy or the MX records change`) };
    }
  }
  const found = await addressesOf(hosts, port, resolver);
  if ('failure' in found) return { failure: lookupFailure('noAddress', `${found.failure} (domain ${domain})`) };
  return { peers: found.peers, ...(active ? { sts: active } : {}) };
}

async function addressesOf(hosts: readonly MxHost[], port: number, resolver: MxResolver): Promise<{ peers: Peer[] } | { failure: string }> {
  const peers: Peer[] = [];
  let lastProblem = '';
  for (const { host } of hosts) {
    if (peers.length >= MAX_PEERS) break;
    if (net.isIP(host)) { peers.push({ host, ip: host, port }); continue; }
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (!ips.length) lastProblem = `MX host ${host} has no address`;
    for (const ip of ips) if (peers.length < MAX_PEERS) peers.push({ host, ip, port });
  }
  return peers.length ? { peers } : { failure: lastProblem || 'no MX host has an address' };
}

