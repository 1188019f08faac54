// Is a [[dkim]] key published? Looks up SELECTOR._domainkey.DOMAIN TXT (RFC 6376 §3.6.2.2)
// and compares its p= with the key's. Every DNS outcome is a value: a resolver that cannot be
// reached is "unknown", never an exception, so `check` can warn instead of failing.
import type { KeyObject } from 'node:crypto';
import { parseTags, publicKeyValue } from './key.js';

export interface TxtResolver { resolveTxt(name: string): Promise<string[][]> }

export type Published =
  | { readonly kind: 'match' }
  /** A DKIM record with another key (or several records, none with this key). */
  | { readonly kind: 'different'; readonly found: string }
  /** An empty p=: the key is revoked (RFC 6376 §3.6.1). */
  | { readonly kind: 'revoked' }
  /** NXDOMAIN, no TXT, or TXT records that are not DKIM keys. */
  | { readonly kind: 'missing' }
  /** Timeout, SERVFAIL, refused: nothing can be said. */
  | { readonly kind: 'unknown'; readonly detail: string };

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

export function recordName(domain: string, selector: string): string {
  return `${selector}._domainkey.${domain}`;
}

export async function publishedKey(resolver: TxtResolver, domain: string, selector: string, key: KeyObject): Promise<Published> {
  let records: string[][];
  try {
    records = await resolver.resolveTxt(recordName(domain, selector));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return NOT_FOUND.has(code) ? { kind: 'missing' } : { kind: 'unknown', detail: code || (e as Error).message };
  }
  // the strings of one record are joined without spaces (RFC 6376 §3.6.2.2)
  const keys = records.map((r) => parseTags(r.join(''))).filter((t) => t.has('p') && (t.get('v') ?? 'DKIM1') === 'DKIM1');
  if (keys.length === 0) return { kind: 'missing' };
  const mine = publicKeyValue(key);
  if (keys.some((t) => t.get('p') === mine)) return { kind: 'match' };
  if (keys.every((t) => t.get('p') === '')) return { kind: 'revoked' };
  const found = keys.map((t) => t.get('p')!).find((p) => p !== '')!;
  return { kind: 'different', found: found.length > 24 ? `${found.slice(0, 12)}…${found.slice(-12)}` : found };
}
