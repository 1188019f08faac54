// Postfix's outbound TLS levels in smarthost's terms (README "TLS per
// destination"): the smtp_tls_policy_maps words, the old smtp_tls_per_site
// words, and the pre-2.3 smtp_use_tls/smtp_enforce_tls switches.
import type { OutboundTls } from '../config/types.js';

export interface Level { readonly tls: OutboundTls; readonly note?: string }

/** smtp_tls_security_level and smtp_tls_policy_maps words; the first word of a policy entry. */
export function policyLevel(word: string): Level | undefined {
  switch (word.toLowerCase()) {
    case 'none': return { tls: 'none' };
    case 'may': return { tls: 'may' };
    case 'encrypt': return { tls: 'encrypt' };
    case 'verify': case 'secure': return { tls: 'verify' };
    case 'dane': case 'dane-only':
      return { tls: 'verify', note: `Postfix level "${word}" (DANE) has no counterpart; verify checks the certificate against the CA store instead` };
    case 'fingerprint':
      return { tls: 'verify', note: 'Postfix level "fingerprint" (pinned certificate digests) has no counterpart; verify needs a certificate a CA (or ca_file) vouches for' };
    default: return undefined;
  }
}

/** smtp_tls_per_site words (Postfix before 2.3). */
export function perSiteLevel(word: string): OutboundTls | undefined {
  const map: Record<string, OutboundTls> = { NONE: 'none', MAY: 'may', MUST_NOPEERMATCH: 'encrypt', MUST: 'verify' };
  return map[word.toUpperCase()];
}

const RANK: Record<OutboundTls, number> = { none: 0, may: 1, encrypt: 2, verify: 3 };

/**
 * A per-site entry combined with the global level (Postfix postconf(5),
 * smtp_tls_per_site): NONE, MUST_NOPEERMATCH and MUST override the global
 * settings; MAY yields to a global smtp_enforce_tls.
 */
export function combinePerSite(site: OutboundTls, global: OutboundTls): OutboundTls {
  if (site === 'may' && RANK[global] > RANK.may) return global;
  return site;
}
