// The Received header smarthost prepends (RFC 5321 §4.4), in Postfix's
// layout so that people who read headers find what they expect: client,
// TLS version and cipher, authenticated user, queue id.
import { domainToASCII } from 'node:url';
import type { ClientInfo } from '../mail/envelope.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 date-time in local time: "Sun, 22 Nov 2026 10:00:01 +0100". */
export function rfc5322Date(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${p2(Math.floor(Math.abs(off) / 60))}${p2(Math.abs(off) % 60)}`;
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${tz}`;
}

/**
 * A message without SMTPUTF8 gets an ASCII header (RFC 6532 is for SMTPUTF8 mail only): an 8-bit
 * HELO name as its A-label when it is a domain, else with "?" for each other character, as
 * Postfix's printable() does.
 */
function ascii(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : domainToASCII(s) || s.replace(/[^\x20-\x7e]/g, '?');
}

export function receivedHeader(opts: {
  client: ClientInfo; by: string; id: string; recipients: readonly string[]; date: Date;
  /** Name the SASL user (Postfix smtpd_sasl_authenticated_header; off by default: it tells the world a login name). */
  showAuthUser?: boolean;
  /** The client asked for SMTPUTF8: names and addresses may stay UTF-8. */
  smtputf8?: boolean;
}): string {
  const text = opts.smtputf8 ? (s: string) => s : ascii;
  const client = { ...opts.client, helo: text(opts.client.helo), hostname: text(opts.client.hostname), ...(opts.client.authUser !== undefined ? { authUser: text(opts.client.authUser) } : {}) };
  if (client.protocol === 'local' && client.uid !== undefined) {
    // Postfix pickup's form for mail from a local program: no client to name
    return `Received: by ${opts.by} (smarthost, from userid ${client.uid})\r\n\tid ${opts.id}; ${rfc5322Date(opts.date)}\r\n`;
  }
  const lines = [`Received: from ${client.helo || 'unknown'} (${client.hostname} [${client.address}])`];
  if (client.tls) lines.push(`\t(using ${client.tls.version} with cipher ${client.tls.cipher})`);
  if (client.authUser && opts.showAuthUser) lines.push(`\t(Authenticated sender: ${client.authUser})`);
  lines.push(`\tby ${opts.by} (smarthost) with ${client.protocol} id ${opts.id}`);
  const rcpt = opts.recipients.length === 1 ? `for <${text(opts.recipients[0]!)}>` : '';
  lines.push(`\t${rcpt ? rcpt + '; ' : ''}${rfc5322Date(opts.date)}`);
  return lines.join('\r\n') + '\r\n';
}
