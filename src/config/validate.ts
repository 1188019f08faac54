// smarthost.toml (already parsed by smol-toml) -> a frozen Config, plus every
// problem found. Each section has its reader; every default is in defaults.ts.
import os from 'node:os';
import path from 'node:path';
import { parseCidr, splitHostPort } from './cidr.js';
import { DEFAULTS } from './defaults.js';
import { readDkim } from './dkim-section.js';
import { readHttp, readWebhook } from './http-section.js';
import { readAuth, readLimits } from './inbound.js';
import { readQueue } from './queue-section.js';
import { Problems, Section, isTable, type Table } from './reader.js';
import type { Cidr, Config, ListenConfig, LocalConfig, LogConfig, MetricsConfig, MxConfig, WebhookConfig } from './types.js';
import { readRelay, readRoutes } from './upstream-section.js';

/** The top-level keys and sections of smarthost.toml. */
export const TOP_KEYS = ['hostname', 'data_dir', 'listen', 'tls', 'auth', 'relay', 'route', 'local', 'rewrite', 'queue', 'limits', 'log', 'mx', 'metrics', 'http', 'suppression', 'webhook', 'dkim'];

/** Where relative paths in the file are anchored: the file's folder, or the cwd for the embedded default. */
function resolver(baseDir: string) {
  return (p: string) => path.resolve(baseDir, p);
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

  const listen = readListens(root, problems);

  const tls = readServerTls(root, abs);

  const auth = readAuth(root.table_('auth') ?? new Section({}, 'auth', problems), path.join(dataDir, 'users'), abs);

  const relay = readRelay(root, abs);
  const routes = readRoutes(root, problems, abs);

  const local = readLocal(root.table_('local'), dataDir, abs);

  const rewrite = readRewrite(root);

  const queue = readQueue(root.table_('queue') ?? new Section({}, 'queue', problems), abs);

  const limits = readLimits(root.table_('limits') ?? new Section({}, 'limits', problems), DEFAULTS);

  const mx = readMx(root);

  const log = readLog(root, abs);
  const metricsS = root.table_('metrics');
  const metrics = metricsS ? readMetrics(metricsS) : undefined;
  const suppression = readSuppression(root);
  const webhooks = readWebhooks(root, problems, abs);
  const httpS = root.table_('http');
  const http = httpS ? readHttp(httpS, { dataDir, abs, messageSize: limits.messageSize }) : undefined;
  const dkim = readDkim(root.raw('dkim'), problems, abs);
  root.finish(TOP_KEYS);

  if (problems.list.length) return { problems: problems.list };
  const config: Config = Object.freeze({
    source: opts.source, hostname, dataDir, listen: Object.freeze(listen),
    tls,
    auth,
    ...(relay ? { relay } : {}),
    routes: Object.freeze(routes), local, rewrite,
    queue, limits, log, mx, dkim,
    ...(metrics ? { metrics } : {}),
    ...(http ? { http } : {}),
    suppression, webhooks: Object.freeze(webhooks),
  });
  return { config, problems: [] };
}

/** The [[listen]] tables (one on the embedded default's address when there is none). */
function readListens(root: Section, problems: Problems): ListenConfig[] {
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

  return listen;
}

/** [tls]: the server certificate and key (both or neither) and the lowest version offered. */
function readServerTls(root: Section, abs: (p: string) => string): Config['tls'] {
  const tlsS = root.table_('tls');
  const certificate = tlsS?.string('certificate');
  const key = tlsS?.string('key');
  if ((certificate === undefined) !== (key === undefined)) {
    tlsS!.problem(certificate === undefined ? 'certificate' : 'key', '[tls] needs both certificate and key, or neither (then a self-signed pair is generated)', 'add the missing one, or remove both');
  }
  const minVersion = tlsS?.oneOf('min_version', ['TLSv1.2', 'TLSv1.3'] as const, DEFAULTS.serverMinTls) ?? DEFAULTS.serverMinTls;
  tlsS?.finish(['certificate', 'key', 'min_version']);

  return Object.freeze({ minVersion, ...(certificate ? { certificate: abs(certificate) } : {}), ...(key ? { key: abs(key) } : {}) });
}

/** [rewrite] senders: sender addresses rewritten on the way out (Postfix smtp_generic_maps). */
function readRewrite(root: Section): Config['rewrite'] {
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

  return Object.freeze({ senders: Object.freeze(senders) });
}

/** [mx]: direct delivery to the recipient domain's MX hosts. */
function readMx(root: Section): MxConfig {
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

  return mx;
}

/** [log]: Postfix lines or JSON, to stdout or a file. */
function readLog(root: Section, abs: (p: string) => string): LogConfig {
  const logS = root.table_('log');
  const logFile = logS?.string('file');
  const log: LogConfig = Object.freeze({
    format: logS?.oneOf('format', ['postfix', 'json'] as const, DEFAULTS.logFormat) ?? DEFAULTS.logFormat,
    ...(logFile !== undefined ? { file: abs(logFile) } : {}),
  });
  logS?.finish(['file', 'format']);
  return log;
}

/** [suppression]: which permanent failures suppress a recipient, and for how long. */
function readSuppression(root: Section): Config['suppression'] {
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
  return suppression;
}

/** The [[webhook]] tables. */
function readWebhooks(root: Section, problems: Problems, abs: (p: string) => string): WebhookConfig[] {
  const webhooks: WebhookConfig[] = [];
  const rawHooks = root.raw('webhook');
  if (rawHooks !== undefined && !Array.isArray(rawHooks)) root.problem('webhook', 'webhook must be written as [[webhook]] tables', 'write [[webhook]] then url = "https://…" below it');
  (Array.isArray(rawHooks) ? rawHooks : []).forEach((t, i) => {
    if (!isTable(t)) return;
    const w = readWebhook(new Section(t, `webhook[${i}]`, problems), abs);
    if (w) webhooks.push(w);
  });
  return webhooks;
}
