// Where a recipient's mail goes: a pure decision over the config, first match
// wins: local domain, then [[route]] by recipient domain or sender, then
// [relay], else the recipient domain's MX hosts. No DNS here (see mx.ts).
import type { RouteConfig, UpstreamConfig } from '../config/types.js';
import { domainMatches, domainOf } from '../mail/address.js';

export type Destination =
  | { readonly kind: 'local'; readonly key: 'local' }
  | { readonly kind: 'upstream'; readonly key: string; readonly name: string; readonly upstream: UpstreamConfig }
  | { readonly kind: 'mx'; readonly key: string; readonly domain: string };

export interface RouteTable {
  readonly localDomains: readonly string[];
  readonly routes: readonly RouteConfig[];
  readonly relay?: UpstreamConfig;
}

const LOCAL: Destination = Object.freeze({ kind: 'local', key: 'local' });

function senderMatches(sender: string, patterns: readonly string[]): boolean {
  const s = sender.toLowerCase();
  const domain = domainOf(s);
  // "@example.com" is a whole domain, ".example.com" its subdomains too, else a full address
  return patterns.some((p) => p.startsWith('@') ? domain === p.slice(1) : p.startsWith('.') ? domainMatches(domain, [p, p.slice(1)]) : s === p);
}

export function routeFor(table: RouteTable, sender: string, recipient: string): Destination {
  const domain = domainOf(recipient);
  if (domain === '' || domainMatches(domain, table.localDomains)) return LOCAL;
  for (const r of table.routes) {
    if (domainMatches(domain, r.domains) || (sender !== '' && senderMatches(sender, r.senders))) {
      return { kind: 'upstream', key: `route:${r.name}`, name: r.name, upstream: r };
    }
  }
  if (table.relay) return { kind: 'upstream', key: 'relay', name: 'relay', upstream: table.relay };
  return { kind: 'mx', key: `mx:${domain}`, domain };
}
