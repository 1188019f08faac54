// MTA-STS (RFC 8461) as plain values: the `_mta-sts` TXT record, the policy
// file, and which MX hosts a policy allows. No I/O here. Hand-written rather
// than mailauth's lib/mta-sts: that one lets "*.example.com" match any depth
// (§4.1 allows exactly one label), takes a missing mode as "none", and has
// no way to bound the fetch (size, status 200 only, media type).
import { domainToASCII } from 'node:url';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  readonly mode: StsMode;
  /** Patterns as published, lower-cased: "mx1.example.com" or "*.example.com". */
  readonly mx: readonly string[];
  /** Seconds, at most one year (§3.2). */
  readonly maxAge: number;
}

/** §3.2: "max_age ... maximum value of 31557600" (one year). */
export const MAX_AGE_LIMIT = 31_557_600;

export type RecordResult =
  | { readonly kind: 'id'; readonly id: string }
  /** No usable record: the domain has no live policy (§3.1); a cached one still applies (§5.1). */
  | { readonly kind: 'none'; readonly detail: string };

/**
 * §3.1: of the TXT strings at `_mta-sts.DOMAIN` (each record's chunks joined), those that do not
 * begin with "v=STSv1" are discarded; anything but exactly one left, or one without a valid id,
 * means no policy.
 */
export function parseStsRecord(records: readonly (readonly string[])[]): RecordResult {
  const sts = records.map((chunks) => chunks.join('')).filter((t) => /^v=STSv1\s*(;|$)/.test(t));
  if (sts.length === 0) return { kind: 'none', detail: 'no "v=STSv1" TXT record' };
  if (sts.length > 1) return { kind: 'none', detail: `${sts.length} "v=STSv1" TXT records (RFC 8461 §3.1 wants exactly one)` };
  const fields = sts[0]!.split(';').map((f) => f.trim()).filter(Boolean);
  const id = fields.find((f) => f.startsWith('id='))?.slice(3);
  if (id === undefined || !/^[A-Za-z0-9]{1,32}$/.test(id)) return { kind: 'none', detail: `TXT record "${sts[0]}" has no valid id (1 to 32 letters and digits)` };
  return { kind: 'id', id };
}

export type PolicyParse = { readonly policy: StsPolicy } | { readonly error: string };

/**
 * §3.2: "key: value" lines (CRLF or LF), case-sensitive; for every key but "mx" only the first
 * occurrence counts; unknown keys are ignored; version, mode and max_age are required, and mx
 * unless mode is "none". A max_age above one year is cut to one year rather than discarded.
 */
export function parseStsPolicy(text: string): PolicyParse {
  const first = new Map<string, string>();
  const mx: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon < 1) return { error: `line "${line.slice(0, 80)}" is not "key: value"` };
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'mx') mx.push(value.toLowerCase());
    else if (!first.has(key)) first.set(key, value);
  }
  const version = first.get('version');
  if (version !== 'STSv1') return { error: version === undefined ? 'no "version" field' : `version is "${version}", not "STSv1"` };
  const mode = first.get('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') {
    return { error: mode === undefined ? 'no "mode" field' : `mode is "${mode}", not enforce, testing or none` };
  }
  const age = first.get('max_age');
  if (age === undefined || !/^\d{1,10}$/.test(age)) return { error: age === undefined ? 'no "max_age" field' : `max_age "${age}" is not a number of seconds` };
  const bad = mx.find((m) => !/^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(m));
  if (bad !== undefined) return { error: `mx "${bad}" is not a host name or "*." and a host name` };
  if (mode !== 'none' && mx.length === 0) return { error: `mode ${mode} without any "mx" field` };
  return { policy: { mode, mx, maxAge: Math.min(Number(age), MAX_AGE_LIMIT) } };
}

/**
 * §4.1: the pattern that allows MX host `host`, or undefined. "*.example.com" stands for exactly
 * one more label: mail.example.com, but neither example.com nor a.b.example.com.
 */
export function allowedBy(host: string, patterns: readonly string[]): string | undefined {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.find((p) => {
    if (!p.startsWith('*.')) return p === name;
    const dot = name.indexOf('.');
    return dot > 0 && name.slice(dot + 1) === p.slice(2);
  });
}

/** For log lines: "MTA-STS policy of example.com (mode enforce, id 2026a, mx mx1.example.com, *.example.net)". */
export function describePolicy(domain: string, p: StsPolicy & { readonly id: string }): string {
  return `MTA-STS policy of ${domain} (mode ${p.mode}, id ${p.id}, mx ${p.mx.join(', ') || '(none)'})`;
}

/** The domain as MTA-STS names it (A-labels, lower case, RFC 8461 §3), or undefined for an address literal. */
export function stsName(domain: string): string | undefined {
  if (domain.startsWith('[')) return undefined;
  return domainToASCII(domain.replace(/\.$/, '')).toLowerCase() || undefined;
}
