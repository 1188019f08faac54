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

/** The sender pattern that matches: "@example.com" a whole domain, ".example.com" its subdomains too, else a full address. */
function senderPattern(sender: string, patterns: readonly string[]): string | undefined {
  const s = sender.toLowerCase();
  const domain = domainOf(s);
  return patterns.find((p) => p.startsWith('@') ? domain === p.slice(1) : p.startsWith('.') ? domainMatches(domain, [p, p.slice(1)]) : s === p);
}

/** The recipient-domain entry that matches ("example.com", or ".example.com" for its subdomains). */
function domainPattern(domain: string, patterns: readonly string[]): string | undefined {
  return patterns.find((p) => domainMatches(domain, [p]));
}

export function routeFor(table: RouteTable, sender: string, recipient: string): Destination {
  return explainRoute(table, sender, recipient).dest;
}

/** The decision and the rule that made it, in words (for `smarthost route test`). */
export function explainRoute(table: RouteTable, sender: string, recipient: string): { dest: Destination; why: string } {
  const domain = domainOf(recipient);
  if (domain === '') return { dest: LOCAL, why: 'a bare name without a domain is local' };
  const local = domainPattern(domain, table.localDomains);
  if (local !== undefined) return { dest: LOCAL, why: `${domain} is in [local] domains ("${local}")` };
  for (const r of table.routes) {
    const upstream = { dest: { kind: 'upstream', key: `route:${r.name}`, name: r.name, upstream: r } as const };
    const byDomain = domainPattern(domain, r.domains);
    if (byDomain !== undefined) return { ...upstream, why: `recipient domain ${domain} matches "${byDomain}" in route ${r.name} domains` };
    const bySender = sender === '' ? undefined : senderPattern(sender, r.senders);
    if (bySender !== undefined) return { ...upstream, why: `sender ${sender} matches "${bySender}" in route ${r.name} senders` };
  }
  if (table.relay) return { dest: { kind: 'upstream', key: 'relay', name: 'relay', upstream: table.relay }, why: 'no [local] domain or [[route]] matches; [relay] takes the rest' };
  return { dest: { kind: 'mx', key: `mx:${domain}`, domain }, why: 'no [local] domain, [[route]] or [relay] matches: direct delivery to the MX hosts of the domain' };
}
