// smarthost.toml (already parsed by smol-toml) -> a frozen Config, plus every
// problem found. Defaults live here, next to the code that applies them.
import os from 'node:os';
import path from 'node:path';
import { withPreset } from './preset-merge.js';
import { OAUTH_KEYS, readOAuth } from './oauth-section.js';
import { readDkim } from './dkim-section.js';
import { Problems, Section, isTable, type Table } from './reader.js';
import type {
  Cidr, Config, ListenConfig, LocalConfig, LogConfig, MetricsConfig, MxConfig, PresetUse, RouteConfig, UpstreamConfig, UpstreamUrl,
} from './types.js';
import { parseCidr } from './cidr.js';
import { parseRate, type Rate } from './units.js';
import { readHttp, readWebhook } from './http-section.js';
import { readAuth, readLimits } from './inbound.js';
import { readQueue } from './queue-section.js';

export const DEFAULTS = Object.freeze({
  listen: '127.0.0.1:2525',
  trustedNetworks: ['127.0.0.0/8', '::1/128'],
  dataDir: './data',
  localDomains: ['localhost'],
  maildir: '{data_dir}/mail/{user}',
  messageSize: 25_000_000,
  recipients: 100,
  connections: 500,
  connectionsPerIp: 50,
  authFailures: '5/10m',
  authFailuresPerAccount: '10/15m', // any address; the Windows lockout baseline (10 in 15 minutes)
  lineLength: 2048,
  idleTimeoutMs: 300_000,     // Postfix smtpd_timeout
  dataTimeoutMs: 600_000,
  errors: 20,                 // Postfix smtpd_hard_error_limit
  junkCommands: 100,          // Postfix smtpd_junk_command_limit
  headerSize: 102_400,        // Postfix header_size_limit
  messagesPerSession: 1000,   // Exim smtp_accept_max_per_connection
  tlsHandshakeTimeoutMs: 30_000, // at most idle_timeout; Postfix smtpd_starttls_timeout is 300s, 10s under stress
  forbidBareNewline: true,    // Postfix smtpd_forbid_bare_newline = reject, for clients outside trusted_networks
  hops: 50,                   // Postfix hopcount_limit
  lifetimeMs: 5 * 86_400_000, // Postfix maximal_queue_lifetime
  retryMinMs: 300_000,
  retryMaxMs: 3_600_000,
  queueStore: Object.freeze({ kind: 'files' as const }), // files under data_dir; [queue] store names a shared database
  leaseMs: 120_000,           // a claimed message returns to the shared queue after this long without its node
  concurrency: 20,            // connections per route, as Postfix's default_destination_concurrency_limit
  mxPort: 25,
  mtaSts: true,               // RFC 8461 for MX delivery, on as in Stalwart, KumoMTA, maddy and mox
  smtpTimeoutMs: 300_000,     // per command and reply (Postfix smtp_*_timeout are 300s)
  relayTls: 'verify' as const,    // a provider's name is known: check its certificate (smtp_tls_security_level = verify)
  mxTls: 'may' as const,          // strangers' MX hosts: opportunistic, as Postfix's default
  relayMinTls: 'TLSv1.2' as const,
  mxMinTls: 'TLSv1' as const,     // opportunistic TLS to strangers: any TLS beats plaintext (Postfix smtp_tls_protocols default)
  serverMinTls: 'TLSv1.2' as const,
  mechanisms: Object.freeze(['PLAIN', 'LOGIN']),
  oauthMechanisms: Object.freeze(['XOAUTH2']),
  delayWarningMs: 0,          // off, as Postfix's delay_warning_time = 0
  logFormat: 'postfix' as const,
  metrics: '127.0.0.1:9325',  // loopback: the scrape page is unauthenticated
  reuseMessages: 100,         // messages per cached upstream connection (Postfix smtp_connection_reuse_count_limit is unlimited; providers cap it)
  reuseTimeMs: 300_000,       // age of a cached upstream connection (Postfix smtp_connection_reuse_time_limit is 300s)
  pregreetMs: 0,              // off: the greeting goes out at once (Postfix smtpd without postscreen)
  pregreetMaxMs: 60_000,      // a client waiting longer than this for a banner gives up (Postfix postscreen_greet_wait is 6s)
  http: '127.0.0.1:8025',     // loopback: anything wider needs TLS or allow_plaintext
  httpAuthFailures: '10/10m', // failed API tokens per client address, then 429
  // mailbox does not exist (RFC 3463): 5.1.1 bad destination mailbox, 5.1.10 null MX / recipient address has null MX
  suppression: Object.freeze({ enabled: true, codes: Object.freeze(['5.1.1', '5.1.10']), expireMs: 30 * 86_400_000 }),
});
export type Defaults = typeof DEFAULTS;

/** The top-level keys and sections of smarthost.toml. */
export const TOP_KEYS = ['hostname', 'data_dir', 'listen', 'tls', 'auth', 'relay', 'route', 'local', 'rewrite', 'queue', 'limits', 'log', 'mx', 'metrics', 'http', 'suppression', 'webhook', 'dkim'];

/** Where relative paths in the file are anchored: the file's folder, or the cwd for the embedded default. */
function resolver(baseDir: string) {
  return (p: string) => path.resolve(baseDir, p);
}

export { parseCidr } from './cidr.js';

/** "host:port" or "[v6]:port" -> parts, or undefined. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

function readListen(s: Section): ListenConfig | undefined {
  const address = s.string('address');
  if (address === undefined && !s.misspells('address')) {
    s.problem('address', `${s.path} has no address`, 'add address = "127.0.0.1:25" (host:port)');
  }
  const hp = address === undefined ? undefined : splitHostPort(address);
  if (address !== undefined && (!hp || !hp.host)) {
    s.problem('address', `${s.at('address')} = "${address}" is not host:port`,
      'write address = "0.0.0.0:25" or "[::1]:25"');
  }
  const tls = s.oneOf('tls', ['none', 'starttls', 'starttls-required', 'implicit'] as const, 'none');
  const auth = s.oneOf('auth', ['none', 'optional', 'required'] as const, 'none');
  const allowPlaintextAuth = s.bool('allow_plaintext_auth', false);
  const nets = s.strings('trusted_networks', DEFAULTS.trustedNetworks);
  const trustedNetworks: Cidr[] = [];
  for (const n of nets) {
    const c = parseCidr(n);
    if (c) trustedNetworks.push(c);
    else s.problem('trusted_networks', `"${n}" in ${s.at('trusted_networks')} is not an IP network`,
      'write networks as CIDR, e.g. "192.0.2.0/24" or "2001:db8::/32"');
  }
  // a bad tls, auth or allow_plaintext_auth value is its own problem: its default must not add this one
  if (auth !== 'none' && tls === 'none' && !allowPlaintextAuth && !['tls', 'auth', 'allow_plaintext_auth'].some((k) => s.isBad(k))) {
    s.problem('auth', `${s.path} offers AUTH but has no TLS, so no client could ever authenticate`,
      'set tls = "starttls-required" (or "implicit"), or allow_plaintext_auth = true if clients really send passwords in clear text');
  }
  const pregreetMs = s.duration('pregreet', DEFAULTS.pregreetMs, '1s');
  if (pregreetMs > DEFAULTS.pregreetMaxMs) {
    s.problem('pregreet', `${s.at('pregreet')} is longer than a minute: clients give up waiting for the greeting`,
      'write pregreet = "1s" (Postfix postscreen waits 6s), or "0" to greet at once');
  }
  s.finish(['address', 'tls', 'auth', 'trusted_networks', 'allow_plaintext_auth', 'pregreet']);
  if (!hp || !hp.host) return undefined;
  return Object.freeze({
    address: address!, host: hp.host, port: hp.port, tls, auth, allowPlaintextAuth, pregreetMs,
    trustedNetworks: Object.freeze(trustedNetworks),
  });
}

/** [metrics]: where Prometheus scrapes; a bare [metrics] listens on the default address. */
function readMetrics(s: Section): MetricsConfig | undefined {
  const address = s.string('address', DEFAULTS.metrics);
  const hp = splitHostPort(address);
  s.finish(['address']);
  if (hp && hp.host) return Object.freeze({ address, host: hp.host, port: hp.port });
  s.problem('address', `${s.at('address')} = "${address}" is not host:port`,
    `write address = "${DEFAULTS.metrics}" or "[::1]:9325"`);
  return undefined;
}

/** Parses a relay URL; Postfix's "[host]:port" habit gets the smtp:// form as its fix. */
export function parseRelayUrl(value: string): { scheme: 'smtp' | 'smtps'; host: string; port: number } | { error: string; fix: string } {
  const v = value.trim();
  // Postfix relayhost habits: "[host]:port", "[host]" and the common slip "[host:port]"
  const postfix = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (postfix) {
    let host = postfix[1]!;
    let port = postfix[2];
    const inner = /^([^:]+):(\d+)$/.exec(host); // "[127.0.0.1:2525]"
    if (inner && port === undefined) { host = inner[1]!; port = inner[2]; }
    const shown = host.includes(':') ? `[${host}]` : host; // IPv6 literals keep their brackets in a URL
    // 465 is TLS from the first byte (the old stunnel job): smtps://, everything else STARTTLS
    const scheme = port === '465' ? 'smtps' : 'smtp';
    return { error: `"${value}" is Postfix's relayhost syntax, not a URL`, fix: `write url = "${scheme}://${shown}:${port ?? '25'}"` };
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    const fix = splitHostPort(v) ? `write url = "${splitHostPort(v)!.port === 465 ? 'smtps' : 'smtp'}://${v}"` : 'write url = "smtp://host:587" or "smtps://host:465"';
    return { error: `"${value}" is not a URL (it has no smtp:// or smtps://)`, fix };
  }
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return { error: `"${value}" is not a valid URL`, fix: 'write url = "smtp://host:587" or "smtps://host:465"' };
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'smtp' && scheme !== 'smtps') {
    return { error: `"${value}" has scheme ${scheme}://, smarthost speaks smtp:// and smtps://`, fix: `write url = "smtp://${u.host || 'host'}:587"` };
  }
  if (!u.hostname || u.pathname.replace(/^\/$/, '') || u.username || u.search) {
    return { error: `"${value}" must be just scheme://host:port`, fix: 'put credentials in username and password_file, not in the URL' };
  }
  const port = u.port ? Number(u.port) : scheme === 'smtps' ? 465 : 25;
  return { scheme, host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

const UPSTREAM_KEYS = [...OAUTH_KEYS, 'url', 'tls', 'username', 'password_file', 'password_env', 'ca_file',
  'client_certificate', 'client_key', 'mechanisms', 'allow_plaintext_auth', 'tls_min_version', 'concurrency', 'timeout',
  'fallback_urls', 'rate', 'quota', 'reuse_messages', 'reuse_time', 'preset', 'region'];

/**
 * `url` (one URL, or a list of one provider's hosts) or `fallback_urls`: every entry is parsed
 * like a single url, and a problem in a list names the entry's index. undefined = a problem.
 */
function readUrlList(s: Section, key: 'url' | 'fallback_urls'): UpstreamUrl[] | undefined {
  const raw = s.raw(key);
  if (raw === undefined && key === 'fallback_urls') return [];
  if (raw === undefined) {
    // a preset that could not apply is the one root cause
    if (!s.isBad('preset') && !s.isBad('region')) s.problem('url', `${s.path} has no url`, 'add url = "smtp://smtp.example.com:587", or preset = "…" for a known provider');
    return undefined;
  }
  const list = typeof raw === 'string' && key === 'url' ? [raw]
    : Array.isArray(raw) && raw.length > 0 && raw.every((v) => typeof v === 'string') ? raw as string[] : undefined;
  if (!list) {
    s.problem(key, `${s.at(key)} must be ${key === 'url' ? 'a URL or ' : ''}a non-empty list of URLs`, `write ${key} = ["smtp://smtp1.example.com:587", "smtp://smtp2.example.com:587"]`);
    return undefined;
  }
  const urls: UpstreamUrl[] = [];
  list.forEach((url, i) => {
    const parsed = parseRelayUrl(url);
    if (!('error' in parsed)) return void urls.push(Object.freeze({ url, ...parsed }));
    if (typeof raw === 'string') s.problem(key, `${s.at(key)}: ${parsed.error}`, parsed.fix);
    else s.problem(key, `${s.at(key)}[${i}]: ${parsed.error}`, parsed.fix.replace(/^write url = /, `write entry ${i} as `));
  });
  return urls.length === list.length ? urls : undefined;
}

/** A rate-shaped key ("30/1m"); "0" turns off what a preset set. undefined = none (or a problem reported). */
function optionalRate(s: Section, key: 'rate' | 'quota', fix: string): Rate | undefined {
  const raw = s.raw(key);
  if (raw === undefined || raw === '0' || raw === 0) return undefined;
  const rate = parseRate(raw);
  if (typeof rate !== 'string') return Object.freeze(rate);
  s.problem(key, `${s.at(key)}: ${rate}`, fix);
  return undefined;
}

/** rate, quota, reuse_messages, reuse_time: how much mail one upstream takes, and over how long a connection. */
function readDeliveryLimits(s: Section): Pick<UpstreamConfig, 'rate' | 'quota' | 'reuseMessages' | 'reuseTimeMs'> {
  const rate = optionalRate(s, 'rate', 'write rate = "30/1m" (at most 30 messages a minute), or "0" for no limit');
  const quota = optionalRate(s, 'quota', 'write quota = "10000/1d" (at most 10,000 recipients in any 24 hours), or "0" for none');
  const reuseMessages = s.int('reuse_messages', DEFAULTS.reuseMessages, 1, 1_000_000);
  const reuseTimeMs = s.duration('reuse_time', DEFAULTS.reuseTimeMs, '5m');
  if (reuseTimeMs === 0) s.problem('reuse_time', `${s.at('reuse_time')} cannot be 0`, 'write reuse_time = "5m" (or reuse_messages = 1 for a new connection per message)');
  return { reuseMessages, reuseTimeMs, ...(rate ? { rate } : {}), ...(quota ? { quota } : {}) };
}

/**
 * A route's name is its queue destination (route:NAME, one connection pool and retry state) and
 * what `smarthost probe NAME`, `smarthost oauth` and the log call it: two routes with one name would
 * share the first's connections and hide the second from those commands.
 */
function uniqueRouteName(s: Section, name: string, i: number, seen: Map<string, number>): void {
  const first = seen.get(name);
  if (first === undefined) { seen.set(name, i); return; }
  const shown = s.has('name') ? `route[${i}].name = "${name}"` : `route[${i}] (no name: "${name}" by default)`;
  s.problem('name', `${shown} is also the name of route[${first}]: route names must be unique`,
    `rename one, e.g. name = "${name}-2", or merge the two routes into one (their domains and senders in one list) if they go to the same place`);
}

/**
 * An upstream from a URL alone (`smarthost probe --url`): smtp:// at tls "may", smtps:// at
 * "verify", no credentials, every other key its default, through the same reader as [relay].
 */
export function upstreamFromUrl(url: string): UpstreamConfig | { error: string; fix: string } {
  const parsed = parseRelayUrl(url);
  if ('error' in parsed) return parsed;
  const problems = new Problems('--url', () => undefined);
  const up = readUpstream(new Section({ url, tls: parsed.scheme === 'smtps' ? 'verify' : 'may' }, 'relay', problems), (p) => p);
  const first = problems.list[0];
  return up && !first ? up : { error: first?.message ?? `"${url}" is not an upstream URL`, fix: first?.fix ?? 'write smtp://host:port' };
}

function readUpstream(s: Section, abs: (p: string) => string, preset?: PresetUse): UpstreamConfig | undefined {
  const urls = readUrlList(s, 'url');
  const fallbackUrls = readUrlList(s, 'fallback_urls');
  const parsed = urls?.[0];
  const tls = s.oneOf('tls', ['none', 'may', 'encrypt', 'verify'] as const, DEFAULTS.relayTls);
  if ([...urls ?? [], ...fallbackUrls ?? []].some((u) => u.scheme === 'smtps') && (tls === 'none' || tls === 'may')) {
    s.problem('tls', `${s.at('tls')} = "${tls}" contradicts smtps://, which is TLS from the first byte`,
      'write tls = "verify" (or "encrypt" to skip certificate checks)');
  }
  const username = s.string('username');
  const passwordFile = s.string('password_file');
  const passwordEnv = s.string('password_env');
  const oauth = readOAuth(s, abs);
  if (passwordFile && passwordEnv) {
    s.problem('password_env', `${s.path} sets both password_file and password_env`, 'keep only one of them');
  }
  if (username && !passwordFile && !passwordEnv && !oauth) {
    s.problem('username', `${s.path} has a username but no password`, 'add password_file = "/etc/smarthost/relay.secret" (mode 0600) or password_env = "NAME"');
  }
  const mechanisms = s.strings('mechanisms', oauth ? DEFAULTS.oauthMechanisms : DEFAULTS.mechanisms).map((m) => m.toUpperCase());
  for (const m of mechanisms) {
    if (!['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2', 'OAUTHBEARER'].includes(m)) {
      s.problem('mechanisms', `unknown SASL mechanism "${m}" in ${s.at('mechanisms')}`, 'use "PLAIN", "LOGIN" or "CRAM-MD5" ("XOAUTH2" or "OAUTHBEARER" with auth = "oauth2")');
    }
  }
  const opt = (key: string) => { const v = s.string(key); return v === undefined ? {} : { [key]: abs(v) }; };
  const caFile = opt('ca_file');
  const cc = opt('client_certificate');
  const ck = opt('client_key');
  const allowPlaintextAuth = s.bool('allow_plaintext_auth', false);
  const minTlsVersion = s.oneOf('tls_min_version', ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const, DEFAULTS.relayMinTls);
  const concurrency = s.int('concurrency', DEFAULTS.concurrency, 1, 1000);
  const timeoutMs = s.duration('timeout', DEFAULTS.smtpTimeoutMs, '5m');
  if (timeoutMs === 0) s.problem('timeout', `${s.at('timeout')} cannot be 0`, 'write timeout = "5m"');
  const limits = readDeliveryLimits(s);
  if (!parsed || !urls || !fallbackUrls) return undefined;
  return Object.freeze({
    url: parsed.url, scheme: parsed.scheme, host: parsed.host, port: parsed.port, tls, mechanisms: Object.freeze(mechanisms), allowPlaintextAuth,
    minTlsVersion, concurrency, timeoutMs, urls: Object.freeze(urls), fallbackUrls: Object.freeze(fallbackUrls), ...limits,
    ...(preset ? { preset } : {}),
    ...(oauth ? { oauth } : {}),
    ...(username !== undefined ? { username } : {}),
    ...(passwordFile !== undefined ? { passwordFile: abs(passwordFile) } : {}),
    ...(passwordEnv !== undefined ? { passwordEnv } : {}),
    ...('ca_file' in caFile ? { caFile: caFile.ca_file! } : {}),
    ...('client_certificate' in cc ? { clientCertificate: cc.client_certificate! } : {}),
    ...('client_key' in ck ? { clientKey: ck.client_key! } : {}),
  });
}

function readLocal(s: Section | undefined, dataDir: string, abs: (p: string) => string): LocalConfig {
  const domains = (s?.strings('domains', DEFAULTS.localDomains) ?? DEFAULTS.localDomains).map((d) => d.toLowerCase());
  const maildir = s?.string('maildir') ?? DEFAULTS.maildir.replace('{data_dir}', dataDir);
  if (!maildir.includes('{user}')) s?.problem('maildir', `${s.at('maildir')} has no {user} placeholder`, 'write maildir = "/var/mail/{user}"');
  const aliases: Record<string, readonly string[]> = {};
  let aliasesFile: string | undefined;
  const raw = s?.raw('aliases');
  if (typeof raw === 'string') aliasesFile = abs(raw);
  else if (isTable(raw)) {
    for (const [name, target] of Object.entries(raw)) {
      const list = typeof target === 'string' ? target.split(',').map((t) => t.trim()).filter(Boolean)
        : Array.isArray(target) && target.every((t) => typeof t === 'string') ? target as string[] : undefined;
      if (list && list.length) aliases[name.toLowerCase()] = Object.freeze(list);
      else s!.problem(`aliases.${name}`, `alias "${name}" must map to an address or a list of addresses`, `write ${name} = "admin@example.com"`);
    }
  } else if (raw !== undefined) {
    s!.problem('aliases', `${s!.at('aliases')} must be a table or the path of an aliases file`, 'write aliases = { root = "admin@example.com" } or aliases = "/etc/aliases"');
  }
  // absent: the host's accounts (/etc/passwd), as Postfix's local_recipient_maps
  const users = s?.raw('users') === undefined ? undefined : s.strings('users', []).map((u) => u.toLowerCase());
  for (const u of users ?? []) {
    if (!/^[^/\s@\0]+$/.test(u) || u === '.' || u === '..') s!.problem('users', `local user "${u}" cannot name a mailbox`, 'use plain user names such as "alice"');
  }
  s?.finish(['domains', 'maildir', 'aliases', 'users']);
  return Object.freeze({
    domains: Object.freeze(domains), maildir: abs(maildir), aliases: Object.freeze(aliases),
    ...(users !== undefined ? { users: Object.freeze(users) } : {}),
    ...(aliasesFile !== undefined ? { aliasesFile } : {}),
  });
}

export interface Validated { readonly config?: Config; readonly problems: readonly import('./types.js').Problem[] }

export function validate(raw: Table, problems: Problems, opts: { source: string; baseDir: string }): Validated {
  const root = new Section(raw, '', problems);
  const abs = resolver(opts.baseDir);
  const validHost = (h: string) => /^[A-Za-z0-9.-]+$/.test(h);
  const given = root.string('hostname');
  if (given !== undefined && !validHost(given)) root.problem('hostname', `hostname "${given}" is not a valid host name`, 'write hostname = "relay.example.com"');
  // a machine name like "my_box" is no valid EHLO name: fall back rather than refuse to start
  const hostname = given ?? (validHost(os.hostname()) ? os.hostname() : 'localhost');
  const dataDir = abs(root.string('data_dir', DEFAULTS.dataDir));

  // listeners
  const listen: ListenConfig[] = [];
  const rawListen = root.raw('listen');
  const listenTables = rawListen === undefined ? [{ address: DEFAULTS.listen }] : Array.isArray(rawListen) ? rawListen : undefined;
  if (!listenTables) root.problem('listen', 'listen must be written as [[listen]] tables', 'write [[listen]] then address = "127.0.0.1:25" below it');
  (listenTables ?? []).forEach((t, i) => {
    if (!isTable(t)) return root.problem(`listen[${i}]`, `listen[${i}] must be a table`, 'write [[listen]] sections');
    const l = readListen(new Section(t, `listen[${i}]`, problems));
    if (!l) return;
    if (listen.some((o) => o.host === l.host && o.port === l.port && l.port !== 0)) {
      problems.add(`listen[${i}].address`, `${l.address} is listed twice`, 'remove one of the [[listen]] sections');
    }
    listen.push(l);
  });

  const tlsS = root.table_('tls');
  const certificate = tlsS?.string('certificate');
  const key = tlsS?.string('key');
  if ((certificate === undefined) !== (key === undefined)) {
    tlsS!.problem(certificate === undefined ? 'certificate' : 'key', '[tls] needs both certificate and key, or neither (then a self-signed pair is generated)', 'add the missing one, or remove both');
  }
  const minVersion = tlsS?.oneOf('min_version', ['TLSv1.2', 'TLSv1.3'] as const, DEFAULTS.serverMinTls) ?? DEFAULTS.serverMinTls;
  tlsS?.finish(['certificate', 'key', 'min_version']);

  const auth = readAuth(root.table_('auth') ?? new Section({}, 'auth', problems), path.join(dataDir, 'users'), abs);

  const relayP = root.table_('relay');
  const relayS = relayP && withPreset(relayP);
  const relay = relayS ? readUpstream(relayS.section, abs, relayS.use) : undefined;
  relayS?.section.finish(UPSTREAM_KEYS);

  const routes: RouteConfig[] = [];
  const routeNames = new Map<string, number>();
  const rawRoutes = root.raw('route');
  if (rawRoutes !== undefined && !Array.isArray(rawRoutes)) root.problem('route', 'route must be written as [[route]] tables', 'write [[route]] sections');
  (Array.isArray(rawRoutes) ? rawRoutes : []).forEach((t, i) => {
    if (!isTable(t)) return;
    const { section: s, use } = withPreset(new Section(t, `route[${i}]`, problems));
    const name = s.string('name', `route${i + 1}`);
    uniqueRouteName(s, name, i, routeNames);
    const domains = s.strings('domains', []).map((d) => d.toLowerCase());
    const senders = s.strings('senders', []).map((d) => d.toLowerCase());
    if (!domains.length && !senders.length) s.problem('domains', `route[${i}] matches nothing`, 'add domains = ["example.com"] or senders = ["@example.com"]');
    const up = readUpstream(s, abs, use);
    s.finish(['name', 'domains', 'senders', ...UPSTREAM_KEYS]);
    if (up) routes.push(Object.freeze({ ...up, name, domains: Object.freeze(domains), senders: Object.freeze(senders) }));
  });

  const local = readLocal(root.table_('local'), dataDir, abs);

  const rewriteS = root.table_('rewrite');
  const senders: Record<string, string> = {};
  const rawSenders = rewriteS?.raw('senders');
  if (isTable(rawSenders)) {
    for (const [k, v] of Object.entries(rawSenders)) {
      if (typeof v === 'string' && v.includes('@')) senders[k.toLowerCase()] = v;
      else rewriteS!.problem(`senders.${k}`, `rewrite for "${k}" must be an address`, `write "${k}" = "alerts@example.com"`);
    }
  } else if (rawSenders !== undefined) rewriteS!.problem('senders', 'rewrite.senders must be a table', 'write senders = { "@host.localdomain" = "alerts@example.com" }');
  rewriteS?.finish(['senders']);

  const queue = readQueue(root.table_('queue'), abs);

  const limits = readLimits(root.table_('limits') ?? new Section({}, 'limits', problems), DEFAULTS);

  const mxS = root.table_('mx');
  const mx: MxConfig = Object.freeze({
    port: mxS?.int('port', DEFAULTS.mxPort, 1, 65535) ?? DEFAULTS.mxPort,
    tls: mxS?.oneOf('tls', ['none', 'may', 'encrypt', 'verify'] as const, DEFAULTS.mxTls) ?? DEFAULTS.mxTls,
    nameservers: Object.freeze(mxS?.strings('nameservers', []) ?? []),
    concurrency: mxS?.int('concurrency', DEFAULTS.concurrency, 1, 1000) ?? DEFAULTS.concurrency,
    timeoutMs: mxS?.duration('timeout', DEFAULTS.smtpTimeoutMs, '5m') ?? DEFAULTS.smtpTimeoutMs,
    minTlsVersion: DEFAULTS.mxMinTls,
    mtaSts: mxS?.bool('mta_sts', DEFAULTS.mtaSts) ?? DEFAULTS.mtaSts,
  });
  for (const ns of mx.nameservers) {
    if (!splitHostPort(ns) && !parseCidr(ns)) mxS!.problem('nameservers', `"${ns}" in ${mxS!.at('nameservers')} is not an IP address or address:port`, 'write nameservers = ["127.0.0.1"] or ["127.0.0.1:5353"]');
  }
  // 0 is refused here as for [relay] and [[route]] timeout (it used to mean 5 minutes silently)
  if (mxS?.has('timeout') && mx.timeoutMs === 0) mxS.problem('timeout', 'mx.timeout cannot be 0', 'write timeout = "5m"');
  mxS?.finish(['port', 'tls', 'nameservers', 'concurrency', 'timeout', 'mta_sts']);

  const logS = root.table_('log');
  const logFile = logS?.string('file');
  const log: LogConfig = Object.freeze({
    format: logS?.oneOf('format', ['postfix', 'json'] as const, DEFAULTS.logFormat) ?? DEFAULTS.logFormat,
    ...(logFile !== undefined ? { file: abs(logFile) } : {}),
  });
  logS?.finish(['file', 'format']);
  const metricsS = root.table_('metrics');
  const metrics = metricsS ? readMetrics(metricsS) : undefined;
  const supS = root.table_('suppression');
  const suppression = Object.freeze({
    enabled: supS?.bool('enabled', DEFAULTS.suppression.enabled) ?? DEFAULTS.suppression.enabled,
    codes: Object.freeze(supS?.strings('codes', DEFAULTS.suppression.codes) ?? DEFAULTS.suppression.codes),
    expireMs: supS?.duration('expire', DEFAULTS.suppression.expireMs, '30d') ?? DEFAULTS.suppression.expireMs,
  });
  for (const c of suppression.codes) {
    if (!/^5\.\d{1,3}\.\d{1,3}$/.test(c)) supS!.problem('codes', `"${c}" in suppression.codes is not a permanent enhanced status code`, 'write codes = ["5.1.1", "5.1.10"] (5.X.Y only: a temporary failure never suppresses)');
  }
  if (supS?.has('expire') && suppression.expireMs === 0) supS.problem('expire', 'suppression.expire cannot be 0', 'write expire = "30d", or enabled = false to keep no list');
  supS?.finish(['enabled', 'codes', 'expire']);
  const webhooks: import('./types.js').WebhookConfig[] = [];
  const rawHooks = root.raw('webhook');
  if (rawHooks !== undefined && !Array.isArray(rawHooks)) root.problem('webhook', 'webhook must be written as [[webhook]] tables', 'write [[webhook]] then url = "https://…" below it');
  (Array.isArray(rawHooks) ? rawHooks : []).forEach((t, i) => {
    if (!isTable(t)) return;
    const w = readWebhook(new Section(t, `webhook[${i}]`, problems), abs);
    if (w) webhooks.push(w);
  });
  const httpS = root.table_('http');
  const http = httpS ? readHttp(httpS, { dataDir, abs, messageSize: limits.messageSize }) : undefined;
  const dkim = readDkim(root.raw('dkim'), problems, abs);
  root.finish(TOP_KEYS);

  if (problems.list.length) return { problems: problems.list };
  const config: Config = Object.freeze({
    source: opts.source, hostname, dataDir, listen: Object.freeze(listen),
    tls: Object.freeze({ minVersion, ...(certificate ? { certificate: abs(certificate) } : {}), ...(key ? { key: abs(key) } : {}) }),
    auth,
    ...(relay ? { relay } : {}),
    routes: Object.freeze(routes), local, rewrite: Object.freeze({ senders: Object.freeze(senders) }),
    queue, limits, log, mx, dkim,
    ...(metrics ? { metrics } : {}),
    ...(http ? { http } : {}),
    suppression, webhooks: Object.freeze(webhooks),
  });
  return { config, problems: [] };
}
