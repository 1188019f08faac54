// Mail addresses as the pipeline sees them: split, domain lower-cased.
// No I/O; used by relay policy, routing and logs.
import { domainToASCII } from 'node:url';

/** The domain part of an address, lower-cased, without a trailing dot; '' for bare names. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  return address.slice(at + 1).toLowerCase().replace(/\.$/, '');
}

/** The local part of an address ('' for the null sender). */
export function localPartOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at);
}

/**
 * True when `domain` is one of `domains`; an entry starting with "." matches
 * every subdomain (Postfix's parent_domain_matches_subdomains style).
 */
export function domainMatches(domain: string, domains: readonly string[]): boolean {
  const d = comparable(domain);
  return domains.some((entry) =>
    entry.startsWith('.') ? d.endsWith(`.${comparable(entry.slice(1))}`) : d === comparable(entry),
  );
}

/**
 * Lower case, and A-labels for U-labels: addresses keep the form the client sent (RFC 6531 mail
 * may use either), so "bücher.example" in the config and "xn--bcher-kva.example" are one domain.
 */
function comparable(domain: string): string {
  const d = domain.toLowerCase();
  return /^[\x00-\x7f]*$/.test(d) ? d : domainToASCII(d) || d;
}
