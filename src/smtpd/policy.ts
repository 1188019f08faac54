// Relay control as pure decisions (no I/O), so each rule is table-tested:
// who may send mail where. Mail for local domains is always taken; anything
// else only from trusted networks or authenticated sessions (Postfix
// permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination).
import ipaddr from 'ipaddr.js';
import type { Cidr, ListenConfig } from '../config/types.js';
import { domainMatches, domainOf } from '../mail/address.js';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';

export function isTrusted(ip: string, networks: readonly Cidr[]): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try { addr = ipaddr.process(ip); } catch { return false; }
  return networks.some(({ range }) => addr.kind() === range[0].kind() && addr.match(range as [typeof addr, number]));
}

export interface SessionFacts {
  readonly listener: Pick<ListenConfig, 'auth'>;
  readonly trusted: boolean;
  readonly authenticated: boolean;
}

/** MAIL FROM: an auth = "required" listener takes nothing from unauthenticated sessions. */
export function checkMailFrom(s: SessionFacts): Reply | undefined {
  if (s.listener.auth === 'required' && !s.authenticated) return replies.authRequired();
  return undefined;
}

/** Is there a local mailbox or alias by this name? 'unavailable' when the table cannot be read. */
export type LocalLookup = (rcpt: string) => boolean | 'unavailable';

/** RCPT TO: local domains for known users (anyone may send to them); elsewhere only trusted or authenticated senders. */
export function checkRcptTo(s: SessionFacts, rcpt: string, localDomains: readonly string[], localExists: LocalLookup = () => true): Reply | undefined {
  if (domainMatches(domainOf(rcpt), localDomains) || !rcpt.includes('@')) {
    const known = localExists(rcpt);
    if (known === 'unavailable') return replies.lookupFailed(rcpt);
    return known ? undefined : replies.unknownLocalUser(rcpt);
  }
  if (s.authenticated || (s.trusted && s.listener.auth !== 'required')) return undefined;
  return replies.relayDenied(rcpt);
}
