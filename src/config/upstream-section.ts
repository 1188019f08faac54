// [relay] and [[route]]: an upstream's URL(s), TLS, credentials (password or OAuth2), limits
// and preset, read into UpstreamConfig; also `smarthost probe --url` through the same reader.
import { splitHostPort } from './cidr.js';
import { DEFAULTS } from './defaults.js';
import { OAUTH_KEYS, readOAuth } from './oauth-section.js';
import { withPreset } from './preset-merge.js';
import { Problems, Section, isTable } from './reader.js';
import type { PresetUse, RouteConfig, UpstreamConfig, UpstreamUrl } from './types.js';
import { parseRate, type Rate } from './units.js';

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

/** [relay], with its preset applied; undefined when absent or wrong. */
export function readRelay(root: Section, abs: (p: string) => string): UpstreamConfig | undefined {
  const relayP = root.table_('relay');
  const relayS = relayP && withPreset(relayP);
  const relay = relayS ? readUpstream(relayS.section, abs, relayS.use) : undefined;
  relayS?.section.finish(UPSTREAM_KEYS);
  return relay;
}

/** The [[route]] tables, each with its preset applied, in the order written. */
export function readRoutes(root: Section, problems: Problems, abs: (p: string) => string): RouteConfig[] {
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
  return routes;
}
