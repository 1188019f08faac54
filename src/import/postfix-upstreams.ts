// Postfix's outbound side in smarthost terms: relayhost (and a local stunnel
// behind it) -> [relay]; transport_maps and sender_dependent_relayhost_maps ->
// [[route]]s; TLS levels from smtp_tls_security_level, smtp_tls_policy_maps or
// smtp_tls_per_site; credentials from smtp_sasl_password_maps.
import type { OutboundTls } from '../config/types.js';
import { filePath, isLoopback, type Ctx } from './context.js';
import type { ImportedUpstream } from './model.js';
import type { MainCf } from './postfix-main-cf.js';
import { isTextSourced, lookup, nextHopKeys, parseMap, parseMapRef, parseNextHop, splitCredentials, type MapEntry, type NextHop } from './postfix-maps.js';
import { parseStunnelConf, tunnelFor } from './stunnel-conf.js';
import { combinePerSite, perSiteLevel, policyLevel } from './tls-levels.js';

/** The tables the outbound side consults, read once. */
export interface Tables {
  readonly sasl?: MapEntry[];
  readonly policy?: MapEntry[];
  readonly perSite?: MapEntry[];
  /** per-site/policy keys that matched some upstream; the rest are reported. */
  readonly usedTlsKeys: Set<string>;
}

/** Reads the map `param` names (its first text-sourced table); reports what cannot be read. */
export function readTable(main: MainCf, param: string, ctx: Ctx): MapEntry[] | undefined {
  const value = main.get(param);
  if (!value) return undefined;
  const refs = value.split(/[\s,]+/).filter(Boolean).map((r) => parseMapRef(r));
  const out: MapEntry[] = [];
  for (const ref of refs) {
    if (!isTextSourced(ref)) { ctx.report.skip(`${param} = ${ref.text}`, `${ref.type}: tables are not read; carry its entries over by hand`); continue; }
    const file = ctx.files.read(ref.path);
    if (!file) { ctx.report.skip(`${param} = ${ref.text}`, `its text source ${ref.path} was not found (the .db file is never read)`); continue; }
    out.push(...parseMap(file.text));
  }
  return out;
}

export function readTables(main: MainCf, ctx: Ctx): Tables {
  const saslOn = main.bool('smtp_sasl_auth_enable');
  if (!saslOn && main.get('smtp_sasl_password_maps')) ctx.report.skip(main.shown('smtp_sasl_password_maps'), 'smtp_sasl_auth_enable is not yes: Postfix did not log in');
  const sasl = saslOn ? readTable(main, 'smtp_sasl_password_maps', ctx) : undefined;
  const policy = readTable(main, 'smtp_tls_policy_maps', ctx);
  const perSite = readTable(main, 'smtp_tls_per_site', ctx);
  return { usedTlsKeys: new Set(), ...(sasl ? { sasl } : {}), ...(policy ? { policy } : {}), ...(perSite ? { perSite } : {}) };
}

/** The global level: smtp_tls_security_level, else the pre-2.3 switches; `explicit` false when nothing is set. */
export function globalLevel(main: MainCf): { tls: OutboundTls; from: string; explicit: boolean; note?: string } {
  const level = main.get('smtp_tls_security_level');
  if (level) {
    const l = policyLevel(level);
    if (l) return { tls: l.tls, from: main.shown('smtp_tls_security_level'), explicit: true, ...(l.note ? { note: l.note } : {}) };
  }
  if (main.bool('smtp_enforce_tls')) {
    const peer = main.bool('smtp_tls_enforce_peername', true);
    return { tls: peer ? 'verify' : 'encrypt', from: main.shown('smtp_enforce_tls'), explicit: true };
  }
  if (main.bool('smtp_use_tls')) return { tls: 'may', from: main.shown('smtp_use_tls'), explicit: true };
  return { tls: 'none', from: 'smtp_tls_security_level (unset)', explicit: false };
}

/** The level for one next hop: a policy-map entry, else a per-site entry combined with the global level. */
function hopLevel(hop: NextHop, main: MainCf, t: Tables, ctx: Ctx): { tls: OutboundTls; from: string } {
  const global = globalLevel(main);
  const policy = t.policy && lookup(t.policy, nextHopKeys(hop));
  if (policy) {
    t.usedTlsKeys.add(policy.key);
    const l = policyLevel(policy.value.split(/\s+/)[0] ?? '');
    if (l?.note) ctx.report.note(l.note);
    if (l) return { tls: l.tls, from: `smtp_tls_policy_maps ${policy.key} ${policy.value}` };
  }
  const site = t.perSite && lookup(t.perSite, [hop.host]);
  const siteLevel = site && perSiteLevel(site.value);
  if (site && siteLevel) {
    t.usedTlsKeys.add(site.key);
    return { tls: combinePerSite(siteLevel, global.tls), from: `smtp_tls_per_site ${site.key} ${site.value} (global: ${global.from})` };
  }
  if (global.note) ctx.report.note(global.note);
  if (!global.explicit) {
    ctx.report.note(`no smtp TLS setting: Postfix sent to ${hop.host} without TLS; smarthost uses tls = "may" (STARTTLS when offered)`);
    return { tls: 'may', from: 'smtp_tls_security_level (unset; Postfix: no TLS)' };
  }
  return global;
}

/** smtp_sasl_password_maps entry for the hop (and, with sender-dependent authentication, the sender key first). */
function credentials(keys: string[], t: Tables, ctx: Ctx, what: string): { username: string; password: string } | undefined {
  const hit = t.sasl && lookup(t.sasl, keys);
  if (!hit) return undefined;
  const c = splitCredentials(hit.value);
  if (!c) { ctx.report.skip(`smtp_sasl_password_maps ${hit.key}`, 'the value is not "user:password"'); return undefined; }
  ctx.report.carry(`smtp_sasl_password_maps ${hit.key} (user ${c.username})`, `${what} username = "${c.username}", password_file (the password alone, mode 0600)`);
  return c;
}

/** smtp_sasl_mechanism_filter and smtp_sasl_security_options -> mechanisms and the plaintext note. */
function saslOptions(main: MainCf, tls: OutboundTls, host: string, ctx: Ctx): { mechanisms?: string[]; allowPlaintextAuth?: boolean } {
  const filter = main.list('smtp_sasl_mechanism_filter').map((m) => m.toUpperCase()).filter((m) => ['PLAIN', 'LOGIN', 'CRAM-MD5'].includes(m));
  if (filter.length) ctx.report.carry(main.shown('smtp_sasl_mechanism_filter'), `mechanisms = [${filter.map((m) => `"${m}"`).join(', ')}]`);
  const opts = main.isSet('smtp_sasl_security_options') ? main.list('smtp_sasl_security_options') : ['noplaintext', 'noanonymous'];
  main.used.add('smtp_sasl_security_options');
  main.used.add('smtp_sasl_tls_security_options');
  main.used.add('smtp_sasl_tls_verified_security_options');
  const clearOk = !opts.includes('noplaintext');
  const tlsOptional = tls === 'none' || tls === 'may';
  if (clearOk && tlsOptional && isLoopback(host)) {
    ctx.report.carry(main.shown('smtp_sasl_security_options'), 'allow_plaintext_auth = true (the upstream is on this host)');
    return { ...(filter.length ? { mechanisms: filter } : {}), allowPlaintextAuth: true };
  }
  if (clearOk && tlsOptional) {
    ctx.report.note(`${main.shown('smtp_sasl_security_options')} with TLS level ${tls}: Postfix would have sent the password to ${host} without TLS if STARTTLS were not offered; smarthost never does (it defers the mail): set tls = "verify" or "encrypt" to make TLS mandatory`);
  }
  return filter.length ? { mechanisms: filter } : {};
}

/** CA file and client certificate from main.cf, for an upstream Postfix spoke TLS to. */
function tlsFiles(main: MainCf, ctx: Ctx): Partial<Pick<ImportedUpstream, 'caFile' | 'clientCertificate' | 'clientKey'>> {
  const ca = main.get('smtp_tls_CAfile');
  const cert = main.get('smtp_tls_cert_file');
  const key = main.get('smtp_tls_key_file') || cert;
  const out: { caFile?: string; clientCertificate?: string; clientKey?: string } = {};
  if (ca) { out.caFile = filePath(ctx, ca, 'smtp_tls_CAfile'); ctx.report.carry(main.shown('smtp_tls_CAfile'), `ca_file = "${out.caFile}"`); }
  if (cert && key) {
    out.clientCertificate = filePath(ctx, cert, 'smtp_tls_cert_file');
    out.clientKey = key === cert ? out.clientCertificate : filePath(ctx, key, 'smtp_tls_key_file');
    ctx.report.carry(`${main.shown('smtp_tls_cert_file')}, ${main.shown('smtp_tls_key_file')}`, `client_certificate = "${out.clientCertificate}", client_key = "${out.clientKey}"`);
  }
  if (main.get('smtp_tls_CApath')) ctx.report.skip(main.shown('smtp_tls_CApath'), 'smarthost takes one ca_file (a PEM bundle); the system store is used otherwise');
  return out;
}

export interface HopOptions { readonly name?: string; readonly domains?: string[]; readonly senders?: string[]; readonly senderKeys?: string[]; readonly from: string; readonly what: string }

/** One next hop (relayhost, a transport or sender map value) -> an upstream. */
export function upstreamFor(hop: NextHop, main: MainCf, t: Tables, ctx: Ctx, o: HopOptions): ImportedUpstream {
  const wrapper = main.bool('smtp_tls_wrappermode') || hop.port === 465;
  const port = hop.port ?? 25;
  const url = `${wrapper ? 'smtps' : 'smtp'}://${hop.host.includes(':') ? `[${hop.host}]` : hop.host}:${port}`;
  if (hop.mx) ctx.report.note(`${hop.written} has no [brackets]: Postfix looked up MX records for ${hop.host} first; smarthost connects to ${hop.host} itself (put the MX host in url if that differs)`);
  let { tls, from } = hopLevel(hop, main, t, ctx);
  if (wrapper && (tls === 'none' || tls === 'may')) { tls = 'encrypt'; from += '; smtps:// needs at least encrypt'; }
  const cred = credentials([...(o.senderKeys ?? []), ...nextHopKeys(hop)], t, ctx, o.what);
  const sasl = cred ? saslOptions(main, tls, hop.host, ctx) : {};
  return {
    ...(o.name ? { name: o.name } : {}), ...(o.domains ? { domains: o.domains } : {}), ...(o.senders ? { senders: o.senders } : {}),
    url, tls, ...tlsFiles(main, ctx), ...sasl,
    ...(cred ? { username: cred.username, password: cred.password } : {}),
    from: `${o.from}\nTLS: ${from}`,
  };
}

/** relayhost = [127.0.0.1]:PORT with a stunnel client on PORT -> straight to the provider over smtps://. */
function throughTunnel(hop: NextHop, main: MainCf, t: Tables, ctx: Ctx): ImportedUpstream | undefined {
  if (!isLoopback(hop.host) || hop.port === undefined) return undefined;
  const conf = ctx.files.read('stunnel.conf') ?? ctx.files.read('/etc/stunnel/stunnel.conf');
  const svc = conf && tunnelFor(parseStunnelConf(conf.text), hop.port);
  if (!conf || !svc) return undefined;
  const starttls = /^smtp$/i.test(svc.options.get('protocol') ?? '');
  const port = svc.connectPort ?? 465;
  const url = `${starttls ? 'smtp' : 'smtps'}://${svc.connectHost}:${port}`;
  const tls: OutboundTls = svc.verifies ? 'verify' : 'encrypt';
  ctx.report.carry(`relayhost = ${hop.written} + stunnel.conf [${svc.name}] connect = ${svc.options.get('connect')}`, `[relay] url = "${url}", tls = "${tls}" (the stunnel hop disappears: smarthost speaks TLS to the provider itself)`);
  ctx.report.skip(`stunnel (${conf.actual}: ${[...svc.options].map(([k, v]) => `${k} = ${v}`).join(', ')})`,
    `not needed any more: stop it once smarthost relays${svc.acceptHost === undefined ? `; its accept = ${svc.acceptPort} listened on every IPv4 address` : ''}`);
  if (!svc.verifies) ctx.report.note(`stunnel checked no certificate (no verifyChain/checkHost): tls = "encrypt"; tls = "verify" would be stricter than the original`);
  const cred = credentials(nextHopKeys(hop), t, ctx, '[relay]');
  if (cred) ctx.report.carry(main.shown('smtp_sasl_security_options'), 'the password is sent only over TLS, which smtps:// always has');
  main.used.add('smtp_sasl_security_options');
  for (const p of ['smtp_tls_CAfile', 'smtp_tls_cert_file', 'smtp_tls_key_file', 'smtp_tls_security_level']) {
    if (main.get(p)) ctx.report.skip(main.shown(p), 'Postfix spoke plain text to the tunnel; TLS settings for the provider come from stunnel.conf');
  }
  return {
    url, tls, ...(svc.caFile ? { caFile: filePath(ctx, svc.caFile, 'stunnel CAfile') } : {}),
    ...(cred ? { username: cred.username, password: cred.password } : {}),
    from: `from Postfix relayhost = ${hop.written} and stunnel.conf [${svc.name}] (client, connect = ${svc.options.get('connect')})`,
  };
}

export function relay(main: MainCf, t: Tables, ctx: Ctx): ImportedUpstream | undefined {
  const value = main.get('relayhost') ?? '';
  const hops = value.split(/[\s,]+/).filter(Boolean);
  if (!hops.length) { ctx.report.carry('relayhost (unset)', 'no [relay]: mail for other domains goes to their MX hosts'); return undefined; }
  if (hops.length > 1) ctx.report.skip(`relayhost entries ${hops.slice(1).join(', ')}`, 'only the first is carried over; list the others in [relay] url = [...]');
  const hop = parseNextHop(hops[0]!);
  if (!hop) { ctx.report.skip(main.shown('relayhost'), 'not a next hop smarthost understands; set [relay] url by hand'); return undefined; }
  const tunnel = throughTunnel(hop, main, t, ctx);
  if (tunnel) return tunnel;
  const up = upstreamFor(hop, main, t, ctx, { from: `from Postfix ${main.shown('relayhost')}`, what: '[relay]' });
  ctx.report.carry(main.shown('relayhost'), `[relay] url = "${up.url}", tls = "${up.tls}"`);
  return up;
}
