// The address of a MAIL FROM or RCPT TO command, read from the command's raw bytes
// (RFC 5321 §4.1.2, with RFC 6531 §3.3's UTF-8). Hand-written because smtp-server's own
// parser is lossy: it turns A-labels into Unicode, decodes 8-bit bytes as UTF-8 (invalid
// ones become U+FFFD) and cuts the path at the first space or ">", also inside a quoted
// local part. The address is kept exactly as the client wrote it. No I/O.
import { isIPv4, isIPv6 } from 'node:net';

export interface SmtpPath {
  /** Local part "@" domain as sent (source route dropped); '' for the null sender, "Postmaster" for RCPT TO:<Postmaster>. */
  readonly address: string;
  /** As sent, quotes and backslashes included. */
  readonly localPart: string;
  /** As sent; '' for the null sender and the bare postmaster. */
  readonly domain: string;
  /** The path text between "<" and ">", source route included. */
  readonly text: string;
  /** What follows the path: '' or " " and the parameters. */
  readonly rest: string;
  /** MAIL only: its parameters include SMTPUTF8 (RFC 6531 §3.4). */
  readonly smtputf8: boolean;
}

/** syntax: not an RFC 5321 path (or not UTF-8); undeclared: 8-bit bytes without SMTPUTF8. */
export type PathResult = { readonly ok: true; readonly path: SmtpPath } | { readonly ok: false; readonly problem: 'syntax' | 'undeclared' };

// Over a latin1 string (one char per byte); \x80-\xff stand for UTF-8 (checked after the match).
const ATEXT = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\x80-\\xff]";
const DOT_STRING = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const QUOTED = '"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\x20-\\x7e])*"';
const LABEL = '[A-Za-z0-9\\x80-\\xff](?:[A-Za-z0-9\\x80-\\xff-]*[A-Za-z0-9\\x80-\\xff])?';
const DOMAIN = `${LABEL}(?:\\.${LABEL})*`;
const LITERAL = '\\[[\\x21-\\x5a\\x5e-\\x7e]*\\]';
const ROUTE = `@${DOMAIN}(?:,@${DOMAIN})*:`;
const PATH = new RegExp(`^<(?:(${ROUTE})?(${DOT_STRING}|${QUOTED})@(${DOMAIN}|${LITERAL})|(postmaster)|)>( .*)?$`, 'is');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the path of `line` (a whole MAIL or RCPT command, without CRLF): what follows the
 * first ":" and optional spaces. The null sender `<>` only for MAIL, `<Postmaster>` only for RCPT.
 * UTF-8 is taken when the MAIL line itself has the SMTPUTF8 parameter, or `transactionUtf8`
 * (a RCPT in a transaction whose MAIL had it).
 */
export function parsePath(line: Buffer, command: 'MAIL' | 'RCPT', transactionUtf8 = false): PathResult {
  const s = line.toString('latin1');
  const colon = s.indexOf(':');
  const m = colon < 0 ? null : PATH.exec(s.slice(colon + 1).replace(/^ +/, ''));
  if (!m) return { ok: false, problem: 'syntax' };
  const [, route = '', local = '', domain = '', postmaster, rest = ''] = m;
  if (local === '' && (command === 'MAIL' ? postmaster !== undefined : postmaster === undefined)) return { ok: false, problem: 'syntax' };
  if (domain.startsWith('[') && !literalOk(domain.slice(1, -1))) return { ok: false, problem: 'syntax' };
  const text = route + (postmaster ?? (local ? `${local}@${domain}` : ''));
  const smtputf8 = command === 'MAIL' && / SMTPUTF8(?= |$)/i.test(rest);
  if (!/[\x80-\xff]/.test(text)) {
    return { ok: true, path: { address: postmaster ?? (local ? `${local}@${domain}` : ''), localPart: postmaster ?? local, domain, text, rest, smtputf8 } };
  }
  if (!smtputf8 && !transactionUtf8) return { ok: false, problem: 'undeclared' };
  try {
    const [l, d, t] = [local, domain, text].map((x) => utf8.decode(Buffer.from(x, 'latin1')));
    return { ok: true, path: { address: `${l}@${d}`, localPart: l!, domain: d!, text: t!, rest, smtputf8 } };
  } catch {
    return { ok: false, problem: 'syntax' };
  }
}

/** RFC 5321 §4.1.3: IPv4, IPv6 with its tag; general literals are not taken (no standard tag is in use). */
function literalOk(inner: string): boolean {
  return isIPv4(inner) || (/^ipv6:/i.test(inner) && isIPv6(inner.slice(5)));
}

const DOT_STRING_ONLY = new RegExp(`^${DOT_STRING}$`);

/** A local part's value: quotes and quoted-pairs undone ("a\"b" -> a"b). */
export function localValue(localPart: string): string {
  return localPart.length >= 2 && localPart.startsWith('"') && localPart.endsWith('"') ? localPart.slice(1, -1).replace(/\\(.)/g, '$1') : localPart;
}

/** The RFC 5321 form of a local-part value: a dot-string when it is one, else a quoted string. */
export function formatLocalPart(value: string): string {
  const latin1 = Buffer.from(value, 'utf8').toString('latin1');
  return DOT_STRING_ONLY.test(latin1) ? value : `"${value.replace(/[\\"]/g, '\\$&')}"`;
}
