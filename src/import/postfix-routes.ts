// transport_maps and sender_dependent_relayhost_maps -> [[route]]s (domain
// routes first, as Postfix consults transport_maps before the sender map),
// and the TLS table entries no upstream used.
import { domainMatches } from '../mail/address.js';
import type { Ctx } from './context.js';
import type { ImportedUpstream } from './model.js';
import type { MainCf } from './postfix-main-cf.js';
import { parseNextHop, type MapEntry } from './postfix-maps.js';
import { readTable, upstreamFor, type Tables } from './postfix-upstreams.js';
import { perSiteLevel, policyLevel } from './tls-levels.js';

const routeName = (prefix: string, host: string) => `${prefix}-${host.replace(/[^A-Za-z0-9]+/g, '-')}`.toLowerCase();

/**
 * `base`, or `base-2`, `base-3`... when taken: a route's name is its queue destination and its
 * secret file, and the config refuses two routes with one name. Two map entries give the same
 * base when their next hops differ only in the port or in characters the name cannot hold.
 */
function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}

const SETTINGS = ['url', 'tls', 'username', 'password', 'caFile', 'clientCertificate', 'clientKey', 'allowPlaintextAuth'] as const;

/** Two upstreams that deliver the same way (host, port, TLS, login): their domains can share one route. */
function sameDelivery(a: ImportedUpstream, b: ImportedUpstream): boolean {
  return SETTINGS.every((k) => a[k] === b[k]) && (a.mechanisms ?? []).join() === (b.mechanisms ?? []).join();
}

/** `r`'s domains added to `into`, whose first comment line also names r's map entry. */
function mergeDomains(into: ImportedUpstream, r: ImportedUpstream, entry: string): ImportedUpstream {
  const [head, ...rest] = into.from.split('\n');
  return { ...into, domains: [...new Set([...(into.domains ?? []), ...(r.domains ?? [])])], from: [`${head}; ${entry}`, ...rest].join('\n') };
}

/** "smtp:[10.0.0.5]:25" -> the next hop, or why it has no counterpart. */
function transportHop(value: string): { hop: string } | { why: string } {
  const m = /^([a-z0-9_-]*):(.*)$/i.exec(value.trim());
  const transport = (m ? m[1]! : value).toLowerCase();
  const hop = m ? m[2]!.trim() : '';
  if (transport === '' || transport === 'smtp' || transport === 'relay') {
    return hop ? { hop } : { why: 'no next hop: this is direct MX delivery, as smarthost does without a route' };
  }
  if (transport === 'local') return { why: 'local delivery: add the domain to [local] domains' };
  return { why: `transport ${transport}: has no counterpart (smarthost delivers over SMTP or to Maildir)` };
}

/** Groups map keys by their value, keeping file order, so that one next hop makes one route. */
function byValue(entries: readonly MapEntry[]): Array<{ value: string; keys: string[] }> {
  const groups: Array<{ value: string; keys: string[] }> = [];
  for (const e of entries) {
    const g = groups.find((x) => x.value === e.value);
    if (g) g.keys.push(e.key); else groups.push({ value: e.value, keys: [e.key] });
  }
  return groups;
}

/** Some recipient domain matches both patterns ("lab.corp.example.com" and ".corp.example.com"). */
const overlap = (a: string, b: string) => domainMatches(a.replace(/^\./, ''), [b]) || domainMatches(b.replace(/^\./, ''), [a]);

/**
 * The earlier route `r`'s domains can join. Routes match in file order, so moving r's domains up
 * past a route with an overlapping domain would take that route's mail: then r stays on its own.
 */
function mergeTarget(out: readonly ImportedUpstream[], r: ImportedUpstream): number {
  const i = out.findIndex((x) => sameDelivery(x, r));
  const passed = out.slice(i + 1).flatMap((x) => x.domains ?? []);
  return i >= 0 && !passed.some((p) => (r.domains ?? []).some((d) => overlap(p, d))) ? i : -1;
}

/** The route for one transport_maps next hop, or the earlier route that delivers the same way, with the domains added. */
function addTransportRoute(out: ImportedUpstream[], r: ImportedUpstream, entry: string, taken: Set<string>, ctx: Ctx): void {
  const i = mergeTarget(out, r);
  const route = i < 0 ? { ...r, name: uniqueName(r.name!, taken) } : mergeDomains(out[i]!, r, entry);
  if (i < 0) out.push(route); else out[i] = route;
  const merged = i < 0 ? '' : ' (merged: the same host, port, TLS and login as an earlier entry)';
  ctx.report.carry(`transport_maps ${entry}`, `[[route]] ${route.name}${merged}: domains = [${route.domains!.map((k) => `"${k}"`).join(', ')}], url = "${route.url}", tls = "${route.tls}"`);
}

function transportRoutes(main: MainCf, t: Tables, taken: Set<string>, ctx: Ctx): ImportedUpstream[] {
  const entries = readTable(main, 'transport_maps', ctx) ?? [];
  const out: ImportedUpstream[] = [];
  for (const g of byValue(entries)) {
    const wild = g.keys.filter((k) => k === '*');
    for (const k of wild) ctx.report.skip(`transport_maps ${k} ${g.value}`, 'a catch-all entry: set [relay] instead');
    const keys = g.keys.filter((k) => k !== '*' && !k.includes('@'));
    for (const k of g.keys.filter((x) => x.includes('@'))) ctx.report.skip(`transport_maps ${k} ${g.value}`, 'routes by recipient address are not supported, only by domain');
    const th = transportHop(g.value);
    if ('why' in th) { for (const k of keys) ctx.report.skip(`transport_maps ${k} ${g.value}`, th.why); continue; }
    const hop = parseNextHop(th.hop);
    if (!hop || !keys.length) { if (!hop) ctx.report.skip(`transport_maps ${g.value}`, 'not a next hop smarthost understands'); continue; }
    const entry = `${keys.join(', ')} ${g.value}`;
    const r = upstreamFor(hop, main, t, ctx, { name: routeName('transport', hop.host), domains: keys, from: `from Postfix transport_maps: ${entry}`, what: '[[route]]' });
    addTransportRoute(out, r, entry, taken, ctx);
  }
  return out;
}

function senderRoutes(main: MainCf, t: Tables, taken: Set<string>, ctx: Ctx): ImportedUpstream[] {
  const entries = readTable(main, 'sender_dependent_relayhost_maps', ctx) ?? [];
  const bySender = main.bool('smtp_sender_dependent_authentication');
  const out: ImportedUpstream[] = [];
  for (const g of byValue(entries)) {
    const hop = parseNextHop(g.value);
    if (!hop) { ctx.report.skip(`sender_dependent_relayhost_maps ${g.keys.join(', ')} ${g.value}`, 'not a next hop smarthost understands'); continue; }
    // with sender-dependent authentication the sender key is looked up first, so senders with
    // different logins to the same host need routes of their own
    const sets = bySender ? g.keys.map((k) => [k]) : [g.keys];
    for (const keys of sets) {
      const name = uniqueName(routeName('sender', bySender ? keys[0]!.replace(/^@/, '') : hop.host), taken);
      const r = upstreamFor(hop, main, t, ctx, { name, senders: keys, ...(bySender ? { senderKeys: keys } : {}), from: `from Postfix sender_dependent_relayhost_maps: ${keys.join(', ')} ${g.value}`, what: '[[route]]' });
      ctx.report.carry(`sender_dependent_relayhost_maps ${keys.join(', ')} ${g.value}`, `[[route]] ${r.name}: senders = [${keys.map((k) => `"${k}"`).join(', ')}], url = "${r.url}"`);
      out.push(r);
    }
  }
  return out;
}

export function routes(main: MainCf, t: Tables, ctx: Ctx): ImportedUpstream[] {
  const taken = new Set<string>();
  return [...transportRoutes(main, t, taken, ctx), ...senderRoutes(main, t, taken, ctx)];
}

/**
 * TLS table entries no relay or route used. With a relayhost they had no effect;
 * without one they applied to direct delivery, which in smarthost takes a route
 * naming the receiving host: written as a commented [[route]] to complete.
 */
export function unusedTlsEntries(t: Tables, hasRelay: boolean, ctx: Ctx): string[] {
  const hints: string[] = [];
  const tables: Array<[string, MapEntry[] | undefined, (v: string) => string | undefined]> = [
    ['smtp_tls_policy_maps', t.policy, (v) => policyLevel(v.split(/\s+/)[0] ?? '')?.tls],
    ['smtp_tls_per_site', t.perSite, (v) => perSiteLevel(v)],
  ];
  for (const [param, entries, level] of tables) {
    for (const e of entries ?? []) {
      if (t.usedTlsKeys.has(e.key)) continue;
      const tls = level(e.value);
      if (hasRelay) { ctx.report.skip(`${param} ${e.key} ${e.value}`, 'no effect here: every non-local message goes to the relayhost, and no transport sends mail to this host'); continue; }
      const domain = e.key.replace(/^\[|\](:\d+)?$/g, '');
      ctx.report.skip(`${param} ${e.key} ${e.value}`, `needs the host that receives this domain's mail: complete the commented [[route]] for ${domain} in the new file`);
      hints.push([`From Postfix ${param}: ${e.key} ${e.value}. Name the host that receives mail for ${domain}, then uncomment:`,
        '[[route]]', `name = "tls-${domain.replace(/[^A-Za-z0-9]+/g, '-')}"`, `domains = ["${domain}"]`, `url = "smtp://MX-HOST-OF-${domain}:25"`, `tls = "${tls ?? 'may'}"`].join('\n'));
    }
  }
  return hints;
}
