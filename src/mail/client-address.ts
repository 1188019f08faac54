// A client's address as limits count it: one spelling per address, and the place a login
// comes from. Shared by the in-memory throttles (auth/) and the cluster-wide ones
// (queue/pg-limits-auth.ts), so both count the same client under the same key.
import ipaddr from 'ipaddr.js';

/** "::ffff:192.0.2.1" -> "192.0.2.1", "2001:DB8::1" -> "2001:db8::1"; anything unparsable as given. */
export function plainAddress(ip: string): string {
  try { return ipaddr.process(ip).toString(); } catch { return ip; }
}

/** A place an account logged in from stays known this long (limits.auth_failures_per_account)… */
export const KNOWN_PLACE_MS = 30 * 86_400_000;
/** …and at most this many places per account, the most recent ones. */
export const KNOWN_PLACES_PER_ACCOUNT = 32;

/** Where a client logs in from: its address, or its /64 for IPv6 (privacy addresses change within it). */
export function loginPlace(ip: string): string {
  const plain = plainAddress(ip);
  try {
    const a = ipaddr.parse(plain);
    if (a.kind() === 'ipv6') return `${(a as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
  } catch { /* not an address: as given */ }
  return plain;
}
