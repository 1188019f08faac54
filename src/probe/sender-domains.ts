// The sender-domain check of `smarthost check`: for each domain the configuration sends mail
// from, is there an SPF record, does it include the provider the mail leaves through (a
// preset knows its include), and is there a DMARC record? Gmail and Yahoo refuse or junk bulk
// mail without them. Only advice: every finding is a warning, and a DNS that cannot be reached
// gives "could not check", never an error. Asks the resolver MX delivery uses ([mx] nameservers,
// else the system's), with a short timeout, all domains at once.
import { Resolver } from 'node:dns/promises';
import type { Config, PresetUse, UpstreamConfig } from '../config/types.js';
import { domainOf } from '../mail/address.js';

export interface SenderDomain {
  readonly domain: string;
  /** Where the configuration names it, e.g. "route news senders". */
  readonly why: string;
  /** The SPF includes the routes it leaves through need, with the route that needs each. */
  readonly includes: ReadonlyMap<string, string>;
}

export interface DomainFinding { readonly level: 'warning' | 'note'; readonly message: string; readonly fix: string }

/** The part of node's Resolver this uses; tests point a real one at a stub DNS server. */
export interface TxtResolver { resolveTxt(name: string): Promise<string[][]> }

/** Per-try timeout: `check` must stay quick when the DNS does not answer. */
const TIMEOUT_MS = 1500;
/** RFC 7208 §4.6.4: at most 10 DNS-querying terms per SPF evaluation. */
const MAX_LOOKUPS = 10;

export function senderResolver(nameservers: readonly string[]): TxtResolver {
  const r = new Resolver({ timeout: TIMEOUT_MS, tries: 1 });
  if (nameservers.length) r.setServers([...nameservers]);
  return r;
}

/**
 * Names reserved for tests and documentation, or that no public DNS answers for (RFC 2606,
 * RFC 6761, RFC 6762, RFC 8375): nobody's mail comes from them, so there is nothing to look up.
 */
const SPECIAL_USE = /(\.(test|example|invalid|localhost|local|internal|home\.arpa)|(^|\.)example\.(com|net|org))$/;

/**
 * The domains mail is sent from: [[route]] senders (through that route), [rewrite] senders
 * targets and the host name (bare sender names get "@hostname", Postfix myorigin), both through
 * [relay] (or direct MX). Names without a dot (localhost) and special-use names (relay.test) are left out.
 */
export function senderDomains(config: Config): SenderDomain[] {
  const found = new Map<string, { why: string[]; includes: Map<string, string> }>();
  const add = (domain: string, why: string, up: UpstreamConfig | undefined, label: string) => {
    const d = domain.toLowerCase().replace(/\.$/, '');
    if (!d.includes('.') || SPECIAL_USE.test(d)) return;
    const entry = found.get(d) ?? { why: [], includes: new Map<string, string>() };
    found.set(d, entry);
    if (!entry.why.includes(why)) entry.why.push(why);
    const inc = up?.preset?.spfInclude;
    if (inc && !entry.includes.has(inc)) entry.includes.set(inc, via(label, up!.preset!));
  };
  for (const r of config.routes) {
    for (const p of r.senders) add(p.startsWith('@') || p.startsWith('.') ? p.slice(1) : domainOf(p), `route ${r.name} senders`, r, `route ${r.name}`);
  }
  for (const target of Object.values(config.rewrite.senders)) add(domainOf(target), '[rewrite] senders', config.relay, '[relay]');
  add(config.hostname, 'hostname (bare sender names)', config.relay, '[relay]');
  return [...found].map(([domain, e]) => ({ domain, why: e.why.join(', '), includes: e.includes }));
}

/** "route news (preset amazon-ses; needed where …)": who needs the include, and when it matters. */
function via(label: string, preset: PresetUse): string {
  return `${label} (preset ${preset.name}${preset.spfNote ? `; ${preset.spfNote}` : ''})`;
}

type Txt = { kind: 'records'; records: string[] } | { kind: 'none' } | { kind: 'unreachable'; code: string };

async function txt(resolver: TxtResolver, name: string): Promise<Txt> {
  try {
    return { kind: 'records', records: (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'ERROR';
    return code === 'ENODATA' || code === 'ENOTFOUND' ? { kind: 'none' } : { kind: 'unreachable', code };
  }
}

const isSpf = (r: string) => /^v=spf1(\s|$)/i.test(r.trim());

/** Every include: and redirect= target reachable from `record`, within the RFC's lookup limit. */
async function spfIncludes(resolver: TxtResolver, record: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [record];
  while (queue.length && seen.size < MAX_LOOKUPS) {
    for (const m of queue.shift()!.matchAll(/(?:^|\s)[+?~-]?(?:include:|redirect=)(\S+)/gi)) {
      const target = m[1]!.toLowerCase().replace(/\.$/, '');
      if (seen.has(target) || seen.size >= MAX_LOOKUPS) continue;
      seen.add(target);
      const next = await txt(resolver, target);
      if (next.kind === 'records') queue.push(...next.records.filter(isSpf));
    }
  }
  return seen;
}

/** What `check` says about one domain: findings and, when all is well, one summary line. */
export async function checkDomain(d: SenderDomain, resolver: TxtResolver): Promise<{ findings: DomainFinding[]; summary: string }> {
  const [spf, dmarc] = await Promise.all([txt(resolver, d.domain), dmarcRecord(resolver, d.domain)]);
  const findings: DomainFinding[] = [];
  const spfRecords = spf.kind === 'records' ? spf.records.filter(isSpf) : [];
  let spfWords: string;
  if (spf.kind === 'unreachable') {
    spfWords = 'SPF not checked';
  } else if (!spfRecords.length) {
    const list = [...d.includes.keys()].map((i) => `include:${i} `).join('');
    findings.push({ level: 'warning', message: `sender domain ${d.domain} (${d.why}) has no SPF record: receivers such as Gmail and Yahoo refuse or junk mail that SPF does not vouch for`,
      fix: `publish ${d.domain}. TXT "v=spf1 ${list || 'include:YOUR-PROVIDER '}~all"` });
    spfWords = 'no SPF';
  } else if (spfRecords.length > 1) {
    findings.push({ level: 'warning', message: `sender domain ${d.domain} has ${spfRecords.length} SPF records, which makes SPF fail for every message (RFC 7208 §4.5)`, fix: 'merge them into one TXT record starting "v=spf1"' });
    spfWords = 'several SPF records';
  } else {
    const reached = await spfIncludes(resolver, spfRecords[0]!);
    const missing = [...d.includes].filter(([inc]) => !reached.has(inc));
    for (const [inc, via] of missing) {
      findings.push({ level: 'warning', message: `the SPF record of ${d.domain} ("${spfRecords[0]}") does not include ${inc}, and ${via} sends its mail`,
        fix: `add include:${inc} before the "all" term: "${spfRecords[0]!.replace(/\s+([~?+-]?all)\b/i, ` include:${inc} $1`)}"` });
    }
    spfWords = missing.length ? 'SPF lacks a provider' : `SPF ok${d.includes.size ? ` (includes ${[...d.includes.keys()].join(', ')})` : ''}`;
  }
  if (dmarc.kind === 'none') findings.push(noDmarc(d));
  const down = [...(spf.kind === 'unreachable' ? [['SPF', spf.code]] : []), ...(dmarc.kind === 'unreachable' ? [['DMARC', dmarc.code]] : [])];
  if (down.length) findings.push(couldNot(down.map((x) => x[0]).join(' and '), d, [...new Set(down.map((x) => x[1]))].join(', ')));
  const dmarcWords = dmarc.kind === 'found' ? `DMARC ${/\bp=\w+/i.exec(dmarc.record)?.[0] ?? 'present'}${dmarc.at === d.domain ? '' : ` (from ${dmarc.at})`}` : dmarc.kind === 'none' ? 'no DMARC' : 'DMARC not checked';
  return { findings, summary: `  sender domain ${d.domain} (${d.why}): ${spfWords}, ${dmarcWords}` };
}

type Dmarc = { kind: 'found'; record: string; at: string } | { kind: 'none' } | { kind: 'unreachable'; code: string };

/**
 * `_dmarc.DOMAIN`, else that of its parents down to two labels: receivers apply the
 * organizational domain's policy to its subdomains (RFC 7489 §6.6.3; without a public suffix
 * list "two labels" stands in for the organizational domain).
 */
async function dmarcRecord(resolver: TxtResolver, domain: string): Promise<Dmarc> {
  const labels = domain.split('.');
  for (let i = 0; labels.length - i >= 2; i++) {
    const at = labels.slice(i).join('.');
    const r = await txt(resolver, `_dmarc.${at}`);
    if (r.kind === 'unreachable') return r;
    const record = r.kind === 'records' ? r.records.find((x) => /^v=DMARC1(\s|;|$)/i.test(x.trim())) : undefined;
    if (record) return { kind: 'found', record, at };
  }
  return { kind: 'none' };
}

function noDmarc(d: SenderDomain): DomainFinding {
  return { level: 'warning', message: `sender domain ${d.domain} (${d.why}) has no DMARC record: Gmail and Yahoo require one from bulk senders`,
    fix: `publish _dmarc.${d.domain}. TXT "v=DMARC1; p=none; rua=mailto:postmaster@${d.domain}" (then tighten p= once reports look right)` };
}

function couldNot(what: string, d: SenderDomain, code: string): DomainFinding {
  return { level: 'note', message: `could not check ${what} of sender domain ${d.domain}: the DNS did not answer (${code})`,
    fix: 'nothing to fix in smarthost; the check needs a resolver ([mx] nameservers, or /etc/resolv.conf) that answers' };
}

/** Every sender domain of the configuration, checked at once. */
export async function senderDomainReport(config: Config, resolver: TxtResolver = senderResolver(config.mx.nameservers)): Promise<{ findings: DomainFinding[]; summary: string[] }> {
  const results = await Promise.all(senderDomains(config).map((d) => withDeadline(d, checkDomain(d, resolver))));
  return { findings: results.flatMap((r) => r.findings), summary: results.map((r) => r.summary) };
}

/** A chain of includes whose servers each time out could take 10 × the timeout: check waits this long in all. */
const DEADLINE_MS = 4000;

function withDeadline(d: SenderDomain, check: Promise<{ findings: DomainFinding[]; summary: string }>): Promise<{ findings: DomainFinding[]; summary: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ findings: DomainFinding[]; summary: string }>((resolve) => {
    timer = setTimeout(() => resolve({ findings: [couldNot('SPF and DMARC', d, `no answer within ${DEADLINE_MS / 1000}s`)], summary: `  sender domain ${d.domain} (${d.why}): not checked` }), DEADLINE_MS);
    timer.unref();
  });
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

/**
 * `smarthost probe`: the same check for the domain of the probe's sender, against the probed
 * upstream's provider. Text lines to print after the steps; none for a reserved name.
 */
export async function probeSenderDomainLines(config: Config, sender: string, upstream: UpstreamConfig, label: string, resolver: TxtResolver = senderResolver(config.mx.nameservers)): Promise<string[]> {
  const domain = domainOf(sender).toLowerCase();
  if (!domain.includes('.') || SPECIAL_USE.test(domain)) return [];
  const inc = upstream.preset?.spfInclude;
  const d: SenderDomain = { domain, why: 'the sender of this probe', includes: new Map(inc ? [[inc, via(label, upstream.preset!)]] : []) };
  const { findings, summary } = await checkDomain(d, resolver);
  return ['', summary.trim(), ...findings.flatMap((f) => [`  ${f.level}: ${f.message}`, `    fix: ${f.fix}`])];
}
