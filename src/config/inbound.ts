// [auth] and [limits]: what inbound sessions may do, read into the frozen AuthConfig
// and LimitsConfig. Defaults come from DEFAULTS in validate.ts; an absent section is
// read as an empty one, so every key gets its default the same way.
import { parseCidr } from './cidr.js';
import { isTable, type Section } from './reader.js';
import type { AuthConfig, Cidr, LimitsConfig } from './types.js';
import { parseRate, type Rate } from './units.js';
import type { Defaults } from './defaults.js';

/** "alice@example.com" or "@example.org" (a whole domain); lower-cased. */
const SENDER = /^[^@\s]*@[^@\s]+$/;

/** [auth] senders: user -> the envelope senders that user may use (Postfix smtpd_sender_login_maps, turned around). */
function readSenders(s: Section): Readonly<Record<string, readonly string[]>> | undefined {
  const raw = s.raw('senders');
  if (raw === undefined) return undefined;
  if (!isTable(raw)) {
    s.problem('senders', `${s.at('senders')} must be a table of user = [addresses]`, 'write senders = { alice = ["alice@example.com", "@example.org"] }');
    return undefined;
  }
  const out: Record<string, readonly string[]> = {};
  for (const [user, v] of Object.entries(raw)) {
    const list = typeof v === 'string' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : undefined;
    const bad = list ? list.filter((a) => !SENDER.test(a)) : [];
    if (!list || bad.length) {
      s.problem(`senders.${user}`, list ? `"${bad[0]}" in ${s.at('senders')}.${user} is not an address or @domain` : `${s.at('senders')}.${user} must be a list of addresses`,
        `write ${user} = ["${user}@example.com", "@example.org"]`);
      continue;
    }
    out[user] = Object.freeze(list.map((a) => a.toLowerCase()));
  }
  // an empty table binds nobody: the same as no table (a user missing from a non-empty one owns no address)
  return Object.keys(out).length ? Object.freeze(out) : undefined;
}

export function readAuth(s: Section, defaultUsersFile: string, abs: (p: string) => string): AuthConfig {
  const usersFile = abs(s.string('users_file') ?? defaultUsersFile);
  const allowAuthzid = s.bool('allow_authzid', false);
  const authenticatedHeader = s.bool('authenticated_header', false);
  const senders = readSenders(s);
  s.finish(['users_file', 'allow_authzid', 'authenticated_header', 'senders']);
  return Object.freeze({ usersFile, allowAuthzid, authenticatedHeader, ...(senders ? { senders } : {}) });
}

/** A rate key ("5/10m"); with `off`, "0" means no limit (undefined). A bad value is reported and the default used. */
function rate(l: Section, key: string, def: string, fix: string, off: boolean): Rate | undefined {
  const raw = l.raw(key) ?? def;
  if (off && (raw === '0' || raw === 0)) return undefined;
  const r = parseRate(raw);
  if (typeof r !== 'string') return Object.freeze(r);
  l.problem(key, `limits.${key}: ${r}`, `write ${key} = ${fix}`);
  return def === '0' ? undefined : Object.freeze(parseRate(def) as Rate);
}

function networks(l: Section, key: string): readonly Cidr[] {
  const out: Cidr[] = [];
  for (const n of l.strings(key, [])) {
    const c = parseCidr(n);
    if (c) out.push(c);
    else l.problem(key, `"${n}" in limits.${key} is not an IP network`, 'write networks as CIDR, e.g. "192.0.2.0/24" or "2001:db8::/32"');
  }
  return Object.freeze(out);
}

/** A TLS handshake may not outlast the deadline of a command: given, it must fit in idle_timeout; by default the shorter of the two. */
function tlsHandshake(l: Section, d: Defaults, idleTimeoutMs: number): number {
  if (!l.has('tls_handshake_timeout')) return Math.min(d.tlsHandshakeTimeoutMs, idleTimeoutMs);
  const ms = l.duration('tls_handshake_timeout', d.tlsHandshakeTimeoutMs, '30s');
  if (ms === 0) l.problem('tls_handshake_timeout', 'limits.tls_handshake_timeout cannot be 0', 'write tls_handshake_timeout = "30s"');
  else if (ms > idleTimeoutMs && !l.isBad('idle_timeout')) {
    l.problem('tls_handshake_timeout', `limits.tls_handshake_timeout is longer than limits.idle_timeout`,
      'write a tls_handshake_timeout no longer than idle_timeout, e.g. "30s"');
  }
  return Math.min(ms || d.tlsHandshakeTimeoutMs, idleTimeoutMs);
}

export function readLimits(l: Section, d: Defaults): LimitsConfig {
  const authFailuresPerAccount = rate(l, 'auth_failures_per_account', d.authFailuresPerAccount, '"10/15m" (or "0" for no limit)', true);
  // "0" (the default, as Postfix's smtpd_client_connection_rate_limit): no limit
  const connectionRate = rate(l, 'connection_rate', '0', '"60/1m" (or "0" for no limit)', true);
  const idleTimeoutMs = l.duration('idle_timeout', d.idleTimeoutMs, '5m');
  const limits: LimitsConfig = Object.freeze({
    messageSize: l.size('message_size', d.messageSize),
    recipients: l.int('recipients', d.recipients, 1),
    connections: l.int('connections', d.connections, 1),
    connectionsPerIp: l.int('connections_per_ip', d.connectionsPerIp, 1),
    authFailures: rate(l, 'auth_failures', d.authFailures, '"5/10m"', false)!,
    ...(authFailuresPerAccount ? { authFailuresPerAccount } : {}),
    ...(connectionRate ? { connectionRate } : {}),
    authFailuresExempt: networks(l, 'auth_failures_exempt'),
    lineLength: l.int('line_length', d.lineLength, 512, 1_000_000),
    idleTimeoutMs,
    dataTimeoutMs: l.duration('data_timeout', d.dataTimeoutMs, '10m'),
    tlsHandshakeTimeoutMs: tlsHandshake(l, d, idleTimeoutMs || d.idleTimeoutMs),
    errors: l.int('errors', d.errors, 1),
    junkCommands: l.int('junk_commands', d.junkCommands, 1),
    messagesPerSession: l.int('messages_per_session', d.messagesPerSession, 1),
    forbidBareNewline: l.bool('forbid_bare_newline', d.forbidBareNewline),
    hops: l.int('hops', d.hops, 1, 1000),
    headerSize: l.size('header_size', d.headerSize),
  });
  for (const k of ['idle_timeout', 'data_timeout'] as const) {
    if (l.has(k) && (k === 'idle_timeout' ? limits.idleTimeoutMs : limits.dataTimeoutMs) === 0) l.problem(k, `limits.${k} cannot be 0`, `write ${k} = "5m"`);
  }
  if (limits.messageSize === 0) l.problem('message_size', 'limits.message_size cannot be 0', 'write message_size = "25MB"');
  l.finish(['message_size', 'recipients', 'connections', 'connections_per_ip', 'auth_failures', 'auth_failures_per_account', 'auth_failures_exempt',
    'connection_rate', 'line_length', 'idle_timeout', 'data_timeout', 'tls_handshake_timeout', 'errors', 'junk_commands', 'messages_per_session',
    'forbid_bare_newline', 'hops', 'header_size']);
  return limits;
}
