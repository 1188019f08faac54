// Postfix lookup tables read from their text sources: "hash:/etc/postfix/x"
// is the file /etc/postfix/x that postmap compiled (x.db is never read, it is
// binary and may be stale). Keys are matched case-insensitively, as the
// indexed types (hash, btree, lmdb, cdb, dbm) do. Types whose contents are
// patterns or live elsewhere (regexp, pcre, cidr, ldap, mysql ...) are reported.
import { logicalLines } from './postfix-main-cf.js';

export interface MapRef { readonly type: string; readonly path: string; readonly text: string }

/** Types whose source is a "key value" text file at the same path. */
const TEXT_SOURCED = new Set(['hash', 'texthash', 'lmdb', 'btree', 'cdb', 'dbm', 'sdbm']);

/** "hash:/etc/postfix/sasl_passwd" -> {type, path}; "/etc/aliases" alone (alias_maps default type) too. */
export function parseMapRef(text: string, defaultType = 'hash'): MapRef {
  const m = /^([a-z0-9_]+):(.*)$/i.exec(text);
  const type = m ? m[1]!.toLowerCase() : defaultType;
  const p = (m ? m[2]! : text).replace(/\.db$/, '');
  return { type, path: p, text };
}

export function isTextSourced(ref: MapRef): boolean { return TEXT_SOURCED.has(ref.type); }

export interface MapEntry { readonly key: string; readonly value: string; readonly line: number }

/** "key value" lines (postmap(1)); a later duplicate key is ignored, as postmap warns and keeps the first. */
export function parseMap(text: string): MapEntry[] {
  const seen = new Set<string>();
  const out: MapEntry[] = [];
  for (const l of logicalLines(text)) {
    const m = /^(\S+)\s*(.*)$/.exec(l.text);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ key, value: m[2]!.trim(), line: l.line });
  }
  return out;
}

/** The first of `keys` found (case-insensitive), with the key that matched. */
export function lookup(entries: readonly MapEntry[], keys: readonly string[]): MapEntry | undefined {
  for (const k of keys) {
    const hit = entries.find((e) => e.key === k.toLowerCase());
    if (hit) return hit;
  }
  return undefined;
}

/** A Postfix next hop: "[host]:port", "[host]", "host:port", "host" (the last two looked up as MX). */
export interface NextHop { readonly host: string; readonly port?: number; readonly mx: boolean; readonly written: string }

export function parseNextHop(text: string): NextHop | undefined {
  const t = text.trim();
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) return { host: bracket[1]!, mx: false, written: t, ...(bracket[2] ? { port: Number(bracket[2]) } : {}) };
  const plain = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(t);
  if (plain) return { host: plain[1]!, mx: true, written: t, ...(plain[2] ? { port: Number(plain[2]) } : {}) };
  return undefined;
}

/**
 * The keys Postfix tries for a next hop in smtp_sasl_password_maps and
 * smtp_tls_policy_maps: the next hop as written ("[host]:port"), then the host.
 */
export function nextHopKeys(hop: NextHop): string[] {
  const port = hop.port !== undefined ? `:${hop.port}` : '';
  const keys = [hop.written, hop.mx ? `${hop.host}${port}` : `[${hop.host}]${port}`, hop.mx ? hop.host : `[${hop.host}]`, hop.host];
  return [...new Set(keys)];
}

/** "user:password" from sasl_passwd: split at the first colon (a password may contain colons). */
export function splitCredentials(value: string): { username: string; password: string } | undefined {
  const i = value.indexOf(':');
  if (i <= 0) return undefined;
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}
