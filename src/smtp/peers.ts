// Which addresses to try, in order, for a destination: a URL host is resolved
// as every program resolves it (/etc/hosts, then DNS) and never MX-looked-up;
// direct delivery walks the MX hosts by preference, each one's addresses.
import dns from 'node:dns/promises';
import net from 'node:net';
import { lookupMx, mxDsn, type MxResolver } from '../route/mx.js';
import type { Classified } from './classify.js';
import type { Peer } from './policy.js';

/** Postfix smtp_mx_address_limit: enough to get past a dead host or two, not a whole farm. */
const MAX_PEERS = 5;

export type PeerList = { readonly peers: readonly Peer[] } | { readonly failure: Classified };

export async function upstreamPeers(host: string, port: number): Promise<PeerList> {
  if (net.isIP(host)) return { peers: [{ host, ip: host, port }] };
  try {
    const addrs = await dns.lookup(host, { all: true });
    return { peers: addrs.slice(0, MAX_PEERS).map((a) => ({ host, ip: a.address, port })) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { failure: { outcome: 'deferred', dsn: { status: '4.4.4', reason: `Host or domain name not found. Name service error for name=${host} type=A: ${code === 'ENOTFOUND' ? 'Host not found' : code ?? (e as Error).message}` } } };
  }
}

export async function mxPeers(domain: string, port: number, resolver: MxResolver): Promise<PeerList> {
  const mx = await lookupMx(domain, resolver);
  if (mx.kind !== 'hosts') {
    const dsn = mxDsn(mx);
    return { failure: { outcome: dsn.status.startsWith('5') ? 'bounced' : 'deferred', dsn } };
  }
  const peers: Peer[] = [];
  let lastProblem = '';
  for (const { host } of mx.hosts) {
    if (peers.length >= MAX_PEERS) break;
    if (net.isIP(host)) { peers.push({ host, ip: host, port }); continue; }
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (!ips.length) lastProblem = `MX host ${host} has no address`;
    for (const ip of ips) if (peers.length < MAX_PEERS) peers.push({ host, ip, port });
  }
  if (!peers.length) return { failure: { outcome: 'deferred', dsn: { status: '4.4.3', reason: `${lastProblem || 'no MX host has an address'} (domain ${domain})` } } };
  return { peers };
}
