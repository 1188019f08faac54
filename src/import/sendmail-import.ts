// `smarthost import sendmail FILE.mc`: SMART_HOST (+ the relay mailer's port,
// + a local stunnel behind it), AuthInfo credentials from the authinfo (or
// access) map's text source, DAEMON_OPTIONS listeners, host names and aliases.
// Only the .mc is read: hand edits of the generated sendmail.cf are not.
import fs from 'node:fs';
import path from 'node:path';
import type { ListenAuth, ListenTls, OutboundTls } from '../config/types.js';
import { filePath, ImportInputError, isLoopback, messageSize, type Ctx, type ImportOptions } from './context.js';
import type { ImportedConfig, ImportedListen, ImportedUpstream } from './model.js';
import { ImportReport } from './import-report.js';
import { authInfoFor, daemonOptions, parseAuthInfo, parseMc, type AuthInfo, type McFile } from './sendmail-mc.js';
import { SetupFiles } from './setup-files.js';
import { parseStunnelConf, tunnelFor } from './stunnel-conf.js';

export const SENDMAIL_MC = '/etc/mail/sendmail.mc';
const LOOPBACK = ['127.0.0.0/8', '::1/128'];
const QUIET = new Set(['divert', 'VERSIONID', 'OSTYPE', 'DOMAIN', 'MAILER', 'define', 'undefine', 'FEATURE', 'DAEMON_OPTIONS', 'include']);

/** "hash -o -T<TMPF> /etc/mail/access" -> "/etc/mail/access" (the text source: .db dropped). */
const mapPath = (spec: string) => (spec.trim().split(/\s+/).pop() ?? '').replace(/\.db$/, '');

/** SMART_HOST `[host]`, `relay:[host]`, `host` -> host, MX flag, and the port from <MAILER>_MAILER_ARGS. */
function smartHost(mc: McFile): { host: string; mx: boolean; port: number; written: string; argsName: string } | undefined {
  const v = mc.defines.get('SMART_HOST');
  if (!v) return undefined;
  const m = /^(?:([a-z0-9]+):)?(\[([^\]]+)\]|[^\s[\]]+)$/i.exec(v.trim());
  if (!m) return undefined;
  const argsName = `${(m[1] ?? 'relay').toUpperCase()}_MAILER_ARGS`;
  const port = Number(/^TCP\s+\$h\s+(\d+)/.exec(mc.defines.get(argsName) ?? '')?.[1] ?? '25');
  return { host: m[3] ?? m[2]!, mx: m[3] === undefined, port, written: v, argsName };
}

/** AuthInfo lines: FEATURE(authinfo)'s map, else the access map (Sendmail reads AuthInfo: there then). */
function authInfos(mc: McFile, ctx: Ctx): { entries: AuthInfo[]; source: string } | undefined {
  const feature = mc.features.get('authinfo');
  const access = mc.features.get('access_db');
  const spec = feature ? (feature[0] || 'hash /etc/mail/authinfo') : access ? (access[0] || 'hash /etc/mail/access') : undefined;
  if (!spec) return undefined;
  const file = ctx.files.read(mapPath(spec));
  if (!file) { ctx.report.skip(`FEATURE(${feature ? 'authinfo' : 'access_db'}, \`${spec}')`, `its text source ${mapPath(spec)} was not found (the .db file is never read)`); return undefined; }
  return { entries: parseAuthInfo(file.text), source: `${mapPath(spec)}${file.actual !== mapPath(spec) ? ` (read from ${file.actual})` : ''}` };
}

/**
 * define(`confDEF_AUTH_INFO', `/etc/mail/default-auth-info'), Sendmail 8.10/8.11: one value per
 * line, user id, authorization id, password, realm, mechanisms. Read as an AuthInfo line without host.
 */
function defaultAuthInfo(mc: McFile, ctx: Ctx): { entries: AuthInfo[]; source: string } | undefined {
  const file = mc.defines.get('confDEF_AUTH_INFO');
  const found = file ? ctx.files.read(file) : undefined;
  if (!file) return undefined;
  if (!found) { ctx.report.skip(`confDEF_AUTH_INFO ${file}`, 'not part of the set-up that was read'); return undefined; }
  const [u, i, p, r, m] = found.text.split(/\r?\n/);
  const fields = new Map(Object.entries({ U: u, I: i, P: p, R: r, M: m }).filter((e): e is [string, string] => !!e[1]));
  return { entries: [{ host: '', fields, line: 1 }], source: `confDEF_AUTH_INFO ${file}` };
}

function credentials(mc: McFile, names: string[], ctx: Ctx): Pick<ImportedUpstream, 'username' | 'password' | 'mechanisms'> {
  const all = authInfos(mc, ctx) ?? defaultAuthInfo(mc, ctx);
  const hit = all && authInfoFor(all.entries, names);
  if (!all || !hit) return {};
  const user = hit.fields.get('U') ?? hit.fields.get('I');
  const password = hit.fields.get('P');
  if (!user || password === undefined) { ctx.report.skip(`AuthInfo:${hit.host}`, 'has no "U:" and "P:"'); return {}; }
  const mechs = (hit.fields.get('M') ?? '').toUpperCase().split(/\s+/).filter((m) => ['PLAIN', 'LOGIN', 'CRAM-MD5'].includes(m));
  ctx.report.carry(`${all.source} AuthInfo:${hit.host} "U:${user}"${mechs.length ? ` "M:${mechs.join(' ')}"` : ''}`,
    `[relay] username = "${user}", password_file (mode 0600)${mechs.length ? `, mechanisms = [${mechs.map((m) => `"${m}"`).join(', ')}]` : ''}`);
  const id = hit.fields.get('I');
  if (id && id !== user) ctx.report.skip(`AuthInfo:${hit.host} "I:${id}"`, 'an authorization id other than the user has no counterpart');
  if (hit.fields.has('R')) ctx.report.skip(`AuthInfo:${hit.host} "R:${hit.fields.get('R')}"`, 'realms have no counterpart: write the user name as the provider expects it');
  for (const e of all.entries.filter((x) => x !== hit)) {
    const same = e.fields.get('U') === user && e.fields.get('P') === password;
    ctx.report.skip(`AuthInfo:${e.host}`, `not used: Sendmail connected to ${names.join('/')} and took AuthInfo:${hit.host}${same ? ' (the same credentials)' : ''}`);
  }
  return { username: user, password, ...(mechs.length ? { mechanisms: mechs } : {}) };
}

function relay(mc: McFile, ctx: Ctx): ImportedUpstream | undefined {
  const sh = smartHost(mc);
  if (!sh) { ctx.report.carry('SMART_HOST (unset)', 'no [relay]: mail for other domains goes to their MX hosts'); return undefined; }
  const conf = isLoopback(sh.host) ? ctx.files.read('stunnel.conf') ?? ctx.files.read('/etc/stunnel/stunnel.conf') : undefined;
  const tunnel = conf && tunnelFor(parseStunnelConf(conf.text), sh.port);
  const written = `SMART_HOST ${sh.written}${mc.defines.has(sh.argsName) ? ` + ${sh.argsName} ${mc.defines.get(sh.argsName)}` : ''}`;
  if (tunnel && conf) {
    const url = `${/^smtp$/i.test(tunnel.options.get('protocol') ?? '') ? 'smtp' : 'smtps'}://${tunnel.connectHost}:${tunnel.connectPort ?? 465}`;
    const tls: OutboundTls = tunnel.verifies ? 'verify' : 'encrypt';
    ctx.report.carry(`${written} + stunnel.conf [${tunnel.name}] connect = ${tunnel.options.get('connect')}`, `[relay] url = "${url}", tls = "${tls}" (the stunnel hop disappears)`);
    ctx.report.skip(`stunnel (${conf.actual}: ${[...tunnel.options].map(([k, v]) => `${k} = ${v}`).join(', ')})`, 'not needed any more: stop it once smarthost relays');
    if (!tunnel.verifies) ctx.report.note('stunnel checked no certificate (no verifyChain/checkHost): tls = "encrypt"; tls = "verify" would be stricter than the original');
    return { url, tls, ...credentials(mc, [sh.host], ctx), ...(tunnel.caFile ? { caFile: filePath(ctx, tunnel.caFile, 'stunnel CAfile') } : {}), from: `from Sendmail ${written} and stunnel.conf [${tunnel.name}] (connect = ${tunnel.options.get('connect')})` };
  }
  const url = `${sh.port === 465 ? 'smtps' : 'smtp'}://${sh.host}:${sh.port}`;
  if (sh.mx) ctx.report.note(`SMART_HOST ${sh.written} has no [brackets]: Sendmail looked up MX records first; smarthost connects to ${sh.host} itself`);
  ctx.report.carry(written, `[relay] url = "${url}", tls = "verify"`);
  ctx.report.note('Sendmail\'s STARTTLS to the smart host was opportunistic; the import writes tls = "verify" (README): use "may" only if the provider has no valid certificate');
  const ca = mc.defines.get('confCACERT');
  return { url, tls: 'verify', ...credentials(mc, [sh.host], ctx), ...(ca ? { caFile: filePath(ctx, ca, 'confCACERT') } : {}), from: `from Sendmail ${written}` };
}

type DaemonAuth = Pick<ImportedListen, 'tls' | 'auth' | 'allowPlaintextAuth'>;

const AVOID = 'to avoid it, give the listener TLS (tls = "starttls-required" and a [tls] certificate, or confSERVER_CERT before the import) and drop allow_plaintext_auth';

/**
 * A daemon that offered AUTH without TLS. smarthost offers AUTH PLAIN and LOGIN only, so AUTH
 * there means passwords in clear text. Kept on loopback, where they never cross a network;
 * elsewhere the listener fails closed instead: auth = "optional" becomes "none" (trusted
 * networks still relay, nobody logs in), M=a becomes STARTTLS and AUTH both required.
 * Every outcome is in the report.
 */
function authWithoutTls(mc: McFile, address: string, auth: ListenAuth, daemon: string, ctx: Ctx): DaemonAuth {
  const tlsOnly = /p/.test(mc.defines.get('confAUTH_OPTIONS') ?? '');
  const offered = `AUTH ${mc.defines.get('confAUTH_MECHANISMS') ?? ''}`.trim();
  if (!tlsOnly && isLoopback(address.replace(/:\d+$/, ''))) {
    ctx.report.note(`${address}: allow_plaintext_auth = true because Sendmail offered ${offered} without TLS on ${daemon} (no confSERVER_CERT): clients send their passwords in clear text; the listener is on loopback, so they cross only this host; ${AVOID}`);
    return { tls: 'none', auth, allowPlaintextAuth: true };
  }
  const why = tlsOnly ? `Sendmail offered no AUTH there (confAUTH_OPTIONS p: PLAIN and LOGIN only after STARTTLS, and this daemon had no TLS)`
    : `Sendmail offered ${offered} without TLS there, so clients sent their passwords in clear text over the network`;
  if (auth === 'required') {
    ctx.report.skip(`AUTH without TLS on ${daemon} (${address})`, `${why}; written as tls = "starttls-required", auth = "required": clients must now use STARTTLS, then log in (smarthost generates a self-signed certificate unless [tls] names one)`);
    return { tls: 'starttls-required', auth: 'required' };
  }
  ctx.report.skip(`AUTH without TLS on ${daemon} (${address})`, `${why}; written as auth = "none": clients in trusted_networks still relay, nobody logs in. To offer AUTH, set tls = "starttls-required", auth = "optional" and a [tls] certificate (allow_plaintext_auth = true would keep clear-text passwords)`);
  return { tls: 'none', auth: 'none' };
}

/** DAEMON_OPTIONS (or Sendmail's default MTA) plus the default MSA on 587 unless FEATURE(no_default_msa). */
function listeners(mc: McFile, ctx: Ctx): ImportedListen[] {
  const tlsOn = mc.defines.has('confSERVER_CERT');
  const authOn = mc.defines.has('confAUTH_MECHANISMS');
  const daemons = mc.calls.filter((c) => c.name === 'DAEMON_OPTIONS').map((c) => ({ o: daemonOptions(c.args[0] ?? ''), line: c.line, text: c.args[0] ?? '' }));
  const list = daemons.length ? daemons : [{ o: daemonOptions('Port=smtp, Name=MTA'), line: 0, text: 'Port=smtp, Name=MTA (Sendmail\'s default)' }];
  if (!mc.features.has('no_default_msa') && !list.some((d) => /^msa$/i.test(d.o.get('name') ?? ''))) list.push({ o: daemonOptions('Port=587, Name=MSA, M=E'), line: 0, text: 'Port=587, Name=MSA, M=E (Sendmail\'s default MSA)' });
  const byPort = new Map<string, { hosts: Set<string>; texts: string[]; mods: string }>();
  for (const d of list) {
    const port = ({ smtp: '25', submission: '587', smtps: '465' } as Record<string, string>)[d.o.get('port') ?? 'smtp'] ?? d.o.get('port') ?? '25';
    const v6 = (d.o.get('family') ?? 'inet') === 'inet6';
    const host = d.o.get('addr') ?? (v6 ? '::' : '0.0.0.0');
    const g = byPort.get(port) ?? { hosts: new Set<string>(), texts: [], mods: '' };
    g.hosts.add(host); g.texts.push(d.text); g.mods += d.o.get('modifiers') ?? '';
    byPort.set(port, g);
  }
  const out: ImportedListen[] = [];
  for (const [port, g] of byPort) {
    // IPv4 and IPv6 wildcards together are one dual-stack "[::]" (both would collide on Linux)
    const hosts = g.hosts.has('::') ? [...g.hosts].filter((h) => h !== '0.0.0.0') : [...g.hosts];
    const tls: ListenTls = g.mods.includes('s') ? 'implicit' : tlsOn ? 'starttls' : 'none';
    const auth: ListenAuth = g.mods.includes('a') ? 'required' : authOn ? 'optional' : 'none';
    for (const h of hosts) {
      const address = h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
      const l = tls === 'none' && auth !== 'none' ? authWithoutTls(mc, address, auth, `DAEMON_OPTIONS ${g.texts.join(' + ')}`, ctx) : { tls, auth };
      const shown = `tls = "${l.tls}", auth = "${l.auth}"${l.allowPlaintextAuth ? ', allow_plaintext_auth = true' : ''}`;
      ctx.report.carry(`DAEMON_OPTIONS ${g.texts.join(' + ')}`, `[[listen]] address = "${address}", ${shown}`);
      out.push({ address, ...l, trustedNetworks: LOOPBACK, from: `from Sendmail DAEMON_OPTIONS: ${g.texts.join('; ')}` });
    }
  }
  ctx.report.carry('Sendmail relays for the local host', 'trusted_networks = ["127.0.0.0/8", "::1/128"]');
  return out;
}

function local(mc: McFile, hostname: string, ctx: Ctx): ImportedConfig['local'] {
  const domains = [hostname.toLowerCase(), 'localhost'];
  const cw = (mc.defines.get('confCW_FILE') ?? '/etc/mail/local-host-names').replace(/^-o\s+/, '');
  const file = ctx.files.read(cw);
  if (file) domains.push(...file.text.split(/\r?\n/).map((l) => l.trim().toLowerCase()).filter((l) => l && !l.startsWith('#')));
  ctx.report.carry(`class w (host name${file ? ` + ${cw}` : ''})`, `[local] domains = [${[...new Set(domains)].map((d) => `"${d}"`).join(', ')}]`);
  if (!file) ctx.report.skip(`confCW_FILE ${cw}`, 'not part of the set-up that was read: add its names to [local] domains');
  const aliasPath = (mc.defines.get('ALIAS_FILE') ?? mc.defines.get('confALIAS_FILE') ?? '/etc/mail/aliases').split(',')[0]!.trim();
  const found = ctx.files.locate(aliasPath);
  if (found) ctx.report.carry(`aliases ${aliasPath}`, `[local] aliases = "${found.actual}"`);
  else ctx.report.skip(`aliases ${aliasPath}`, 'not part of the set-up that was read: set [local] aliases to the aliases file');
  return { domains: [...new Set(domains)], ...(found ? { aliases: found.actual } : {}), from: `from Sendmail class w (the host's names${file ? `, ${cw}` : ''})` };
}

const FEATURE_WHY: Record<string, string> = {
  access_db: 'the access table is not read: relaying is for trusted_networks and logged-in users; carry RELAY/REJECT entries over by hand',
  mailertable: 'its table is not read: write a [[route]] per domain',
  virtusertable: 'virtual users have no counterpart: use [local] aliases',
  blacklist_recipients: 'no counterpart', local_lmtp: 'smarthost delivers local mail to Maildir itself',
};

function leftovers(mc: McFile, used: Set<string>, ctx: Ctx): void {
  for (const [name, args] of mc.features) {
    if (name === 'authinfo' || name === 'no_default_msa') continue; // both carried over
    ctx.report.skip(`FEATURE(${[name, ...args].join(', ')})`, FEATURE_WHY[name] ?? 'no smarthost counterpart');
  }
  for (const [name, value] of mc.defines) {
    if (used.has(name)) continue;
    ctx.report.skip(`define(${name}, ${value})`, name === 'confLOG_LEVEL' ? 'Sendmail\'s (debug) log level: smarthost\'s log lines are fixed' : 'no smarthost counterpart');
  }
  for (const c of mc.calls.filter((x) => !QUIET.has(x.name))) ctx.report.skip(`${c.name}(${c.args.join(', ')})`, 'no smarthost counterpart');
  ctx.report.note('only the .mc was read: hand edits of the generated sendmail.cf (e.g. a commented-out rule) are not carried over');
}

/** confSERVER_CERT/confSERVER_KEY -> [tls] (Sendmail then offers STARTTLS on every daemon). */
function sendmailServerTls(mc: McFile, ctx: Ctx): ImportedConfig['serverTls'] {
  const cert = mc.defines.get('confSERVER_CERT');
  const key = mc.defines.get('confSERVER_KEY') ?? cert;
  if (!cert || !key) return undefined;
  const certificate = filePath(ctx, cert, 'confSERVER_CERT');
  const keyFile = filePath(ctx, key, 'confSERVER_KEY');
  ctx.report.carry(`confSERVER_CERT ${cert}, confSERVER_KEY ${key}`, `[tls] certificate = "${certificate}", key = "${keyFile}"`);
  return { certificate, key: keyFile, from: `from Sendmail confSERVER_CERT ${cert}` };
}

export function importSendmail(mcFile: string, opts: ImportOptions): { config: ImportedConfig; report: ImportReport } {
  let text: string;
  try { text = fs.readFileSync(mcFile, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImportInputError(`cannot read ${mcFile}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
  const report = new ImportReport();
  const ctx: Ctx = { files: new SetupFiles(path.dirname(path.resolve(mcFile)), '/etc/mail'), report, host: opts.host };
  const mc = parseMc(text);
  if (!mc.calls.length) throw new ImportInputError(`${mcFile} has no m4 macro calls: is it a sendmail .mc file?`);
  const given = mc.defines.get('confDOMAIN_NAME');
  if (given) report.carry(`confDOMAIN_NAME ${given}`, `hostname = "${given}"`);
  else report.note(`no confDOMAIN_NAME: smarthost uses the system's host name at run time; [local] domains name this machine's, ${opts.host.hostname}`);
  const listen = listeners(mc, ctx);
  const up = relay(mc, ctx);
  const loc = local(mc, given ?? opts.host.hostname, ctx);
  const serverTls = sendmailServerTls(mc, ctx);
  const size = messageSize(ctx, `confMAX_MESSAGE_SIZE ${mc.defines.get('confMAX_MESSAGE_SIZE') ?? ''}`.trim(), mc.defines.get('confMAX_MESSAGE_SIZE'));
  if (mc.defines.has('confAUTH_MECHANISMS')) report.skip('inbound SASL users (Cyrus SASL)', 'their passwords cannot be exported; re-add each user with `smarthost user add NAME`');
  leftovers(mc, new Set(['SMART_HOST', 'RELAY_MAILER_ARGS', 'ESMTP_MAILER_ARGS', 'SMTP_MAILER_ARGS', 'confDOMAIN_NAME', 'confCW_FILE', 'confCACERT', 'ALIAS_FILE', 'confALIAS_FILE', 'confSERVER_CERT', 'confSERVER_KEY', 'confAUTH_MECHANISMS', 'confDEF_AUTH_INFO', 'confMAX_MESSAGE_SIZE']), ctx);
  const config: ImportedConfig = {
    ...(given ? { hostname: { value: given, from: `Sendmail confDOMAIN_NAME` } } : {}), dataDir: opts.dataDir,
    listen, ...(serverTls ? { serverTls } : {}), ...(up ? { relay: up } : {}), ...(size ? { messageSize: size } : {}), routes: [], routeHints: [], local: loc,
  };
  return { config, report };
}
