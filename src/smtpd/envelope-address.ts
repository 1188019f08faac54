// The address a MAIL or RCPT command carries, read from the command's own bytes
// (mail/smtp-path.ts) rather than taken from smtp-server's parse, which turns A-labels into
// Unicode and 8-bit bytes into U+FFFD. smtp-server has parsed the same line first; where its
// address is not the same one (a quoted local part holding " " or ">"), the command is refused
// rather than one address judged by the relay policy and another queued and relayed.
import { domainToUnicode } from 'node:url';
import ipaddr from 'ipaddr.js';
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';
import { parsePath } from '../mail/smtp-path.js';

/** `smtputf8`: a MAIL that asked for SMTPUTF8 (read from its own line, see listener-scope.ts). */
export type EnvelopeAddress = { readonly ok: true; readonly address: string; readonly smtputf8: boolean } | { readonly ok: false; readonly reply: Reply };

/**
 * One listener's bookkeeping beside smtp-server's envelope objects: the address each
 * `mailFrom`/`rcptTo` entry stands for, exactly as sent, and which MAILs asked for SMTPUTF8
 * (not smtp-server's `envelope.smtpUtf8`: it is set before onMailFrom and stays set when that
 * MAIL is refused).
 */
export class EnvelopeAddresses {
  private readonly sent = new WeakMap<SMTPServerAddress, string>();
  private readonly utf8 = new WeakSet<SMTPServerAddress>();
  /** `lineOf`: the bytes of the MAIL or RCPT command smtp-server is handling in this session. */
  constructor(private readonly lineOf: (s: SMTPServerSession) => Buffer | undefined) {}

  /** For onMailFrom/onRcptTo: the address as sent (remembered for `exact`), or the refusal. */
  check(command: 'MAIL' | 'RCPT', address: SMTPServerAddress, s: SMTPServerSession): EnvelopeAddress {
    const a = envelopeAddress(command, this.lineOf(s), command === 'RCPT' && this.smtputf8(s), address.address);
    if (a.ok) this.sent.set(address, a.address);
    if (a.ok && a.smtputf8) this.utf8.add(address);
    return a;
  }

  /** The address as sent of an entry `check` accepted; any other is a bug. */
  exact(a: SMTPServerAddress): string {
    const address = this.sent.get(a);
    if (address === undefined) throw new Error(`smtpd: address <${a.address}> was not checked by onMailFrom/onRcptTo`);
    return address;
  }

  /** The session's transaction asked for SMTPUTF8. */
  smtputf8(s: SMTPServerSession): boolean {
    return !!s.envelope.mailFrom && this.utf8.has(s.envelope.mailFrom);
  }
}

/**
 * `line`: the command's bytes (guard.ts `envelopeLine()`); `transactionUtf8`: for RCPT, the
 * transaction's MAIL asked for SMTPUTF8; `parsed`: smtp-server's address for the same command.
 */
export function envelopeAddress(command: 'MAIL' | 'RCPT', line: Buffer | undefined, transactionUtf8: boolean, parsed: string): EnvelopeAddress {
  const syntax = command === 'MAIL' ? replies.badSenderSyntax() : replies.badRecipientSyntax();
  // the guard hands over every MAIL and RCPT line; a missing one would be a bug: refuse, never guess
  if (!line) return { ok: false, reply: syntax };
  const r = parsePath(line, command, transactionUtf8);
  if (!r.ok) return { ok: false, reply: r.problem === 'undeclared' ? replies.smtputf8Undeclared() : syntax };
  if (!sameAddress(r.path.address, parsed)) return { ok: false, reply: syntax };
  return { ok: true, address: r.path.address, smtputf8: r.path.smtputf8 };
}

/** The same local part, byte for byte, and the same domain up to case, A-/U-label form and IPv6 spelling. */
function sameAddress(ours: string, theirs: string): boolean {
  const [a, b] = [ours.lastIndexOf('@'), theirs.lastIndexOf('@')];
  if (ours.slice(0, a < 0 ? undefined : a) !== theirs.slice(0, b < 0 ? undefined : b)) return false;
  return a < 0 ? b < 0 : b >= 0 && sameDomain(ours.slice(a + 1), theirs.slice(b + 1));
}

function sameDomain(a: string, b: string): boolean {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  if (a.startsWith('[') || b.startsWith('[')) {
    const ip = (d: string) => { try { return ipaddr.parse(d.slice(1, -1).replace(/^ipv6:/i, '')).toNormalizedString(); } catch { return undefined; } };
    return ip(a) !== undefined && ip(a) === ip(b);
  }
  const u = domainToUnicode(a);
  return u !== '' && u === domainToUnicode(b);
}
