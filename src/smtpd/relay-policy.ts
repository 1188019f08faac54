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

/**
 * MAIL FROM of an authenticated session with [auth] senders set (Postfix smtpd_sender_login_maps with
 * reject_authenticated_sender_login_mismatch): the user may send only as its addresses or @domains. A user
 * the map does not name owns no address, as in Postfix. The null sender is allowed: bounces and
 * auto-replies carry no one's identity. Unauthenticated sessions are not checked here.
 */
export function checkSenderLogin(senders: Readonly<Record<string, readonly string[]>> | undefined, user: string | undefined, sender: string): Reply | undefined {
  if (!senders || user === undefined || sender === '') return undefined;
  const address = sender.toLowerCase();
  const domain = address.includes('@') ? address.slice(address.lastIndexOf('@')) : undefined;
  const owned = Object.hasOwn(senders, user) ? senders[user]! : [];
  return owned.some((a) => a === address || a === domain) ? undefined : replies.senderNotOwned(sender, user);
}
