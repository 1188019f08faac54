// Delivery status notifications (RFC 3464): the bounce, delay warning or
// success report for one message, as complete message bytes ready to spool.
// Pure: no I/O. Wording and layout follow Postfix's bounce(8) templates so that
// people recognise them. A DSN goes to the envelope sender, never to <>:
// a bounce never bounces.
import { randomBytes } from 'node:crypto';
import type { Dsn } from '../mail/delivery.js';
import type { Envelope } from '../mail/envelope.js';
import { splitMessage } from '../mail/header-section.js';

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed';

/** One recipient's line in the report. The Dsn fields give Status, Remote-MTA and Diagnostic-Code. */
export interface DsnRecipient extends Dsn {
  /** Final recipient, as delivery saw it. */
  readonly address: string;
  /** RFC 3461 ORCPT as the client gave it ("rfc822;bob@example.net"), for Original-Recipient. */
  readonly orcpt?: string;
  readonly action: DsnAction;
  readonly lastAttempt?: Date;
  /** For 'delayed': when the queue gives up. */
  readonly willRetryUntil?: Date;
}

export interface DsnInput {
  /** Our host name: the Reporting-MTA and MAILER-DAEMON@hostname. */
  readonly hostname: string;
  /** The original message's envelope; `sender` receives the DSN and must not be ''. */
  readonly envelope: Envelope;
  readonly recipients: readonly DsnRecipient[];
  /** The original message, header section and body, CRLF line ends. */
  readonly original: Buffer;
  readonly now: Date;
  /** MIME boundary, for deterministic tests; default from envelope.id and now. */
  readonly boundaryId?: string;
  /** Largest original returned whole; larger ones are returned as headers only. Default RETURN_LIMIT. */
  readonly returnLimit?: number;
}

/** Postfix returns at most bounce_size_limit (50000) bytes; we return up to 100 KiB, then headers only. */
export const RETURN_LIMIT = 100 * 1024;

type Kind = 'failure' | 'delay' | 'success';

/** A failure report if any recipient failed, else a delay warning if any is delayed, else a success report. */
function kindOf(recipients: readonly DsnRecipient[]): Kind {
  if (recipients.some((r) => r.action === 'failed')) return 'failure';
  if (recipients.some((r) => r.action === 'delayed')) return 'delay';
  return 'success';
}

const SUBJECTS: Record<Kind, string> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

/** The Subject Postfix gives the same report. */
export function dsnSubject(recipients: readonly DsnRecipient[]): string {
  return SUBJECTS[kindOf(recipients)];
}

/** The complete DSN message, headers and body, CRLF line ends. Throws (a bug) for the null sender or no recipients. */
export function buildDsn(input: DsnInput): Buffer {
  const { envelope, recipients, hostname, now } = input;
  if (envelope.sender === '') throw new Error(`DSN for ${envelope.id}: the null sender gets no DSN (a bounce never bounces)`);
  if (recipients.length === 0) throw new Error(`DSN for ${envelope.id}: no recipients to report`);

  const kind = kindOf(recipients);
  // RFC 6533: with SMTPUTF8 or non-ASCII addresses the report uses the "global"
  // types, whose fields and headers may hold UTF-8 (RFC 6532).
  const global = envelope.smtputf8 === true || [envelope.sender, ...recipients.flatMap((r) => [r.address, r.orcpt ?? ''])].some(nonAscii);
  const returned = returnedContent(input, kind, global);
  const notice = noticeText(input, kind, returned.note);
  const report = deliveryStatus(input, global);

  const parts: Part[] = [
    { headers: ['Content-Description: Notification', `Content-Type: text/plain; charset=${nonAscii(notice) ? 'utf-8' : 'us-ascii'}`], body: Buffer.from(notice, 'utf8') },
    { headers: ['Content-Description: Delivery report', `Content-Type: ${global ? 'message/global-delivery-status' : 'message/delivery-status'}`], body: Buffer.from(report, 'utf8') },
    { headers: [`Content-Description: ${returned.description}`, `Content-Type: ${returned.type}`], body: returned.body },
  ];
  const boundary = uniqueBoundary(input.boundaryId ?? `${envelope.id}.${Math.floor(now.getTime() / 1000)}/${hostname}`, parts);
  const eightBit = parts.some((p) => has8bit(p.body));

  const headers = [
    fold('From', `Mail Delivery System <MAILER-DAEMON@${hostname}>`),
    fold('To', `<${clean(envelope.sender)}>`),
    fold('Subject', SUBJECTS[kind]),
    `Date: ${rfc5322Date(now)}`,
    fold('Message-ID', `<${compactDate(now)}.${envelope.id}.${randomBytes(4).toString('hex')}@${hostname}>`),
    'Auto-Submitted: auto-replied', // RFC 3834 §5: keeps vacation responders from answering
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
    `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}`,
  ];
  const chunks: Buffer[] = [Buffer.from(headers.join('\r\n') + '\r\n\r\nThis is a MIME-encapsulated message.\r\n', 'utf8')];
  for (const part of parts) {
    const cte = has8bit(part.body) ? '8bit' : '7bit';
    chunks.push(Buffer.from(`\r\n--${boundary}\r\n${part.headers.join('\r\n')}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n`, 'utf8'), part.body);
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(chunks);
}

interface Part { readonly headers: readonly string[]; readonly body: Buffer }

// ---------------------------------------------------------------- part 1: for people

const POSTMASTER = 'For further assistance, please send mail to postmaster.';
const SIGNATURE = '                   The mail system';

function noticeText(input: DsnInput, kind: Kind, returnNote: string): string {
  const { hostname, recipients, envelope, now } = input;
  const out = [`This is the mail system at host ${hostname}.`, ''];
  if (kind === 'failure') {
    out.push(
      "I'm sorry to have to inform you that your message could not",
      "be delivered to one or more recipients. It's attached below.", '',
      POSTMASTER, '',
      'If you do so, please include this problem report. You can',
      'delete your own text from the attached returned message.', '',
    );
  } else if (kind === 'delay') {
    const bar = '#'.repeat(67);
    out.push(bar, '# THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE. #', bar, '');
    const arrived = new Date(envelope.arrived);
    const since = Number.isNaN(arrived.getTime()) ? '' : ` for ${duration(now.getTime() - arrived.getTime())}`;
    out.push(`Your message could not be delivered${since}.`);
    const until = recipients.flatMap((r) => (r.action === 'delayed' && r.willRetryUntil ? [r.willRetryUntil.getTime()] : []));
    if (until.length > 0) out.push(`It will be retried until ${rfc5322Date(new Date(Math.max(...until)))}.`);
    out.push('', POSTMASTER, '');
  } else {
    out.push(
      'Your message was successfully delivered to the destination(s)',
      'listed below. If the message was delivered to mailbox you will',
      'receive no further notifications. Otherwise you may still receive',
      'notifications of mail delivery errors from other systems.', '',
    );
  }
  if (returnNote) out.push(...wrap(returnNote, ''), '');
  out.push(SIGNATURE, '');
  for (const r of recipients) {
    const orig = originalAddress(r.orcpt);
    const expanded = orig && orig.toLowerCase() !== r.address.toLowerCase() ? ` (expanded from <${clean(orig)}>)` : '';
    out.push(...wrap(`<${clean(r.address)}>${expanded}: ${clean(r.reason)}`, '    '), '');
  }
  return out.join('\r\n');
}

/** "4 hours", "1 day", "35 minutes": how long the message has waited. */
function duration(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  const [n, unit] = minutes < 120 ? [minutes, 'minute'] : minutes < 2 * 1440 ? [Math.floor(minutes / 60), 'hour'] : [Math.floor(minutes / 1440), 'day'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------- part 2: for programs (RFC 3464 §2)

function deliveryStatus(input: DsnInput, global: boolean): string {
  const { envelope, hostname } = input;
  const field = (name: string, value: string) => fold(name, global ? clean(value) : ascii(value));
  const msg = [
    field('Reporting-MTA', `dns; ${hostname}`),
    field('X-Smarthost-Queue-ID', envelope.id),
    field('X-Smarthost-Sender', addressField(envelope.sender)),
  ];
  if (envelope.envid !== undefined) msg.push(field('Original-Envelope-Id', envelope.envid));
  const arrived = new Date(envelope.arrived);
  if (!Number.isNaN(arrived.getTime())) msg.push(field('Arrival-Date', rfc5322Date(arrived)));

  const groups = input.recipients.map((r) => {
    const lines: string[] = [];
    if (r.orcpt !== undefined) lines.push(field('Original-Recipient', orcptField(r.orcpt)));
    lines.push(field('Final-Recipient', addressField(r.address)), field('Action', r.action), field('Status', r.status));
    if (r.remoteMta) lines.push(field('Remote-MTA', `dns; ${mtaName(r.remoteMta)}`));
    if (r.diagnostic) lines.push(field('Diagnostic-Code', `smtp; ${r.diagnostic}`));
    if (r.lastAttempt) lines.push(field('Last-Attempt-Date', rfc5322Date(r.lastAttempt)));
    if (r.action === 'delayed' && r.willRetryUntil) lines.push(field('Will-Retry-Until', rfc5322Date(r.willRetryUntil)));
    return lines.join('\r\n') + '\r\n';
  });
  return [msg.join('\r\n') + '\r\n', ...groups].join('\r\n');
}

/** "rfc822; a@b", or RFC 6533's "utf-8; ..." type for a non-ASCII address. */
function addressField(address: string): string {
  return `${nonAscii(address) ? 'utf-8' : 'rfc822'}; ${address}`;
}

/** ORCPT is "addr-type;address" (RFC 3461 §4.2), already xtext-decoded by smtpd. */
function orcptField(orcpt: string): string {
  const semi = orcpt.indexOf(';');
  return semi < 0 ? addressField(orcpt.trim()) : `${orcpt.slice(0, semi).trim()}; ${orcpt.slice(semi + 1).trim()}`;
}

function originalAddress(orcpt: string | undefined): string | undefined {
  if (orcpt === undefined) return undefined;
  const semi = orcpt.indexOf(';');
  return orcpt.slice(semi + 1).trim() || undefined;
}

/** Remote-MTA takes a host name (RFC 3464 §2.3.5): "mx.example.net[192.0.2.1]:25" -> "mx.example.net"; a bare "[192.0.2.1]" stays. */
function mtaName(remote: string): string {
  const m = /^([^[\]]+)\[[^\]]*\](?::\d+)?$/.exec(remote.trim());
  return m ? m[1]! : remote.trim();
}

// ---------------------------------------------------------------- part 3: the message itself

interface Returned { readonly type: string; readonly description: string; readonly body: Buffer; readonly note: string }

/**
 * RET=HDRS, delay warnings and success reports return the header section; a
 * failure returns the whole message, as Postfix does when RET is absent,
 * unless it is too big or has lines SMTP cannot carry.
 */
function returnedContent(input: DsnInput, kind: Kind, global: boolean): Returned {
  const original = crlf(input.original);
  const headersOnly = (description: string, note: string): Returned => ({
    type: global ? 'message/global-headers' : 'text/rfc822-headers', description, body: splitMessage(original).head, note,
  });
  if (kind === 'delay') return headersOnly('Delayed Message Headers', '');
  if (kind === 'success') return headersOnly('Delivered Message Headers', '');
  if (input.envelope.ret === 'HDRS') return headersOnly('Undelivered Message Headers', '');
  const limit = input.returnLimit ?? RETURN_LIMIT;
  if (original.length > limit) {
    return headersOnly('Undelivered Message Headers',
      `The message was ${original.length} bytes, more than the ${limit} bytes this system returns, so only its headers are attached below.`);
  }
  if (longestLine(original) > 998) {
    return headersOnly('Undelivered Message Headers',
      'The message has lines longer than 998 bytes, which mail cannot carry, so only its headers are attached below.');
  }
  return { type: global ? 'message/global' : 'message/rfc822', description: 'Undelivered Message', body: original, note: '' };
}

/** Every line end as CRLF; byte-exact otherwise (latin1 maps bytes to chars one to one). */
function crlf(buf: Buffer): Buffer {
  let s = buf.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (s.length > 0 && !s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(s, 'latin1');
}

function longestLine(buf: Buffer): number {
  let longest = 0;
  let start = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
    longest = Math.max(longest, i - 1 - start); // without the CRLF
    start = i + 1;
  }
  return Math.max(longest, buf.length - start);
}

// ---------------------------------------------------------------- text helpers

/** A boundary (RFC 2046 §5.1.1: at most 70 characters) that occurs in no part. */
function uniqueBoundary(base: string, parts: readonly Part[]): string {
  const stem = base.replace(/[^0-9A-Za-z'()+_,\-./:=?]/g, '_').slice(0, 60);
  for (let n = 0; ; n++) {
    const boundary = n === 0 ? stem : `${stem}.${n}`;
    if (!parts.some((p) => p.body.includes(`--${boundary}`, 0, 'latin1'))) return boundary;
  }
}

const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);

function has8bit(buf: Buffer): boolean {
  return buf.some((b) => b >= 0x80 || b === 0);
}

/** No control characters in a header or text line: CR, LF, TAB and the rest become spaces, runs of them one. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

/** For the ASCII-only message/delivery-status: non-ASCII as RFC 6533 §3 "\x{HEX}". */
function ascii(s: string): string {
  return clean(s).replace(/[^\x00-\x7f]/gu, (c) => `\\x{${c.codePointAt(0)!.toString(16).toUpperCase()}}`);
}

const FOLD_AT = 78;       // RFC 5322 §2.1.1 SHOULD
const HARD_LIMIT = 998;   // RFC 5322 §2.1.1 MUST, without CRLF

/** "Name: value", folded at spaces before 78 octets; words too long for one line are split. */
function fold(name: string, value: string): string {
  const words = clean(value).split(' ').flatMap((w) => split(w, HARD_LIMIT - 1 - name.length - 2));
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (line.length > name.length + 1 && octets(line) + 1 + octets(word) > FOLD_AT) {
      lines.push(line);
      line = '';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines.join('\r\n');
}

/** Word-wraps text for people at 76 columns, Postfix style: continuation lines indented. */
function wrap(text: string, indent: string): string[] {
  const words = text.split(' ').filter((w) => w !== '').flatMap((w) => split(w, HARD_LIMIT - indent.length));
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line !== '' && octets(line) + 1 + octets(word) > 76) {
      lines.push(line);
      line = indent + word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Splits a string into pieces of at most `max` UTF-8 octets, never inside a character. */
function split(word: string, max: number): string[] {
  if (octets(word) <= max) return [word];
  const pieces: string[] = [];
  let piece = '';
  for (const ch of word) {
    if (octets(piece) + octets(ch) > max) {
      pieces.push(piece);
      piece = '';
    }
    piece += ch;
  }
  if (piece) pieces.push(piece);
  return pieces;
}

const octets = (s: string) => Buffer.byteLength(s, 'utf8');

// ---------------------------------------------------------------- dates

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/**
 * RFC 5322 §3.3 date-time in UTC: "Sun, 22 Nov 2026 10:00:01 +0000". UTC keeps
 * reports identical wherever they are built. (cleanup/received.ts has a local-time
 * twin; bounce does not import cleanup.)
 */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** "20261122100001" for Message-IDs. */
function compactDate(d: Date): string {
  return d.toISOString().replace(/\D/g, '').slice(0, 14);
}
