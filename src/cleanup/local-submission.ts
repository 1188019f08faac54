// Turns what a local program wrote to `smarthost sendmail` on stdin into the message to queue:
// CRLF line ends, sendmail's lone-dot rule, recipients from the header (-t), Bcc removed, and
// From/Date/Message-ID added when missing (RFC 5322 §3.6 requires From and Date; Postfix
// cleanup adds them too). Pure functions over Buffers: the body is never decoded, so 8-bit
// and malformed bytes pass through unchanged, and existing header fields keep their bytes.
import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { LineEnds } from './line-ends.js';
import { rfc5322Date } from './received.js';

export interface SubmissionFacts {
  /** Names the host in Message-ID and in MAILER-DAEMON@hostname. */
  readonly hostname: string;
  /** Envelope sender, already qualified (root@host.example); '' is the null sender. */
  readonly sender: string;
  /** -F, else the user's GECOS name; the display name of an added From. */
  readonly fullName?: string;
  readonly now: Date;
}

export interface Submission {
  /** CRLF; the header section edited, the body byte-identical. */
  readonly message: Buffer;
  /** With extractRecipients: To/Cc/Bcc (or Resent-To/Cc/Bcc) addresses, first spelling kept. Else []. */
  readonly headerRecipients: readonly string[];
  /** Some byte >= 0x80 anywhere in the message. */
  readonly eightBit: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const END_OF_DATA = Buffer.from('\r\n.\r\n');

/**
 * Line ends normalised to CRLF (bare LF and bare CR become CRLF, and a last line without one
 * gets one); without ignoreDots a line holding only "." ends the message (sendmail's default)
 * and the rest is dropped. A leading mbox "From " line is dropped.
 */
export function readLocalMessage(input: Buffer, ignoreDots: boolean): Buffer {
  const crlf = toCrlf(withoutMboxFrom(input));
  return ignoreDots ? crlf : cutAtLoneDot(crlf);
}

/** The "From sender date" line mail(1) and mbox tools put first is not a header field. */
function withoutMboxFrom(input: Buffer): Buffer {
  if (!input.subarray(0, 5).equals(Buffer.from('From '))) return input;
  const cr = input.indexOf(CR);
  const lf = input.indexOf(LF);
  const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
  if (end < 0) return Buffer.alloc(0);
  return input.subarray(input[end] === CR && input[end + 1] === LF ? end + 2 : end + 1);
}

function toCrlf(input: Buffer): Buffer {
  const le = new LineEnds();
  const out = Buffer.concat([le.push(input), le.end()]);
  // A complete last line: SMTP DATA and the spool both expect one (RFC 5321 §4.1.1.4).
  return out.length === 0 || out.subarray(-2).equals(CRLF) ? out : Buffer.concat([out, CRLF]);
}

function cutAtLoneDot(m: Buffer): Buffer {
  if (m.subarray(0, 3).equals(Buffer.from('.\r\n'))) return Buffer.alloc(0);
  const at = m.indexOf(END_OF_DATA);
  return at < 0 ? m : m.subarray(0, at + 2);
}

/** One header field: its lowercase name and its bytes, folded continuation lines included. */
interface Field { readonly name: string; readonly start: number; readonly end: number }

interface HeaderSection {
  readonly fields: readonly Field[];
  /** Where the fields end: the blank line, the first non-header line, or the end of input. */
  readonly end: number;
  /** The section ended at a line that is not a header field, so a blank line must go before it. */
  readonly needsBlank: boolean;
}

export function prepareSubmission(
  message: Buffer,
  opts: { readonly extractRecipients: boolean; readonly facts: SubmissionFacts },
): Submission {
  const head = headerSection(message);
  const headerRecipients = opts.extractRecipients ? recipientsOf(message, head.fields) : [];
  // A Bcc must never reach the recipients, with or without -t (RFC 5322 §3.6.3).
  const kept = head.fields.filter((f) => f.name !== 'bcc' && f.name !== 'resent-bcc');
  const out = assemble(message, head, kept, missingFields(head.fields, opts.facts));
  return { message: out, headerRecipients, eightBit: hasEightBit(out) };
}

/**
 * Header section = lines up to the first empty line (RFC 5322 §2.1). A line that is neither a
 * field nor a continuation ends it early, as in Postfix cleanup: that line and the rest are body,
 * so a first line like "Hello," makes the whole input body.
 */
function headerSection(m: Buffer): HeaderSection {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < m.length) {
    const nl = m.indexOf(LF, pos);
    const next = nl < 0 ? m.length : nl + 1;
    if (isBlankLine(m, pos, next)) return { fields, end: pos, needsBlank: false };
    const last = fields.at(-1);
    if (last !== undefined && (m[pos] === 0x20 || m[pos] === 0x09)) {
      fields[fields.length - 1] = { ...last, end: next }; // folded: belongs to the previous field
    } else {
      const name = fieldName(m, pos, next);
      if (name === undefined) return { fields, end: pos, needsBlank: true };
      fields.push({ name, start: pos, end: next });
    }
    pos = next;
  }
  return { fields, end: pos, needsBlank: false };
}

function isBlankLine(m: Buffer, start: number, end: number): boolean {
  const len = end - start;
  return (len === 2 && m[start] === CR) || (len === 1 && m[start] === LF);
}

/** RFC 5322 §3.6.8: field-name is printable ASCII but ":", directly followed by ":". */
function fieldName(m: Buffer, start: number, end: number): string | undefined {
  const match = /^([\x21-\x39\x3b-\x7e]+):/.exec(m.toString('latin1', start, Math.min(end, start + 1000)));
  return match?.[1]!.toLowerCase();
}

function assemble(m: Buffer, head: HeaderSection, kept: readonly Field[], added: readonly string[]): Buffer {
  const parts = kept.map((f) => m.subarray(f.start, f.end));
  if (added.length > 0) {
    const last = kept.at(-1);
    if (last !== undefined && m[last.end - 1] !== LF) parts.push(CRLF); // the input ended inside that field
    parts.push(Buffer.from(added.map((line) => line + '\r\n').join(''), 'utf8'));
  }
  if (head.needsBlank) parts.push(CRLF);
  parts.push(m.subarray(head.end));
  return Buffer.concat(parts);
}

function hasEightBit(b: Buffer): boolean {
  for (const byte of b) if (byte >= 0x80) return true;
  return false;
}

// ---- recipients for -t --------------------------------------------------------------------

const RCPT_FIELDS = new Set(['to', 'cc', 'bcc']);
const RESENT_RCPT_FIELDS = new Set(['resent-to', 'resent-cc', 'resent-bcc']);
// addressparser keeps only addresses with an "@": "<root>" and a bare "root" lose their address.
// Local programs address local users that way (logwatch and many cron scripts write "To: root"),
// so those are tagged with this domain before parsing and untagged after. .invalid is reserved
// (RFC 2606), so no real address carries it.
const UNQUALIFIED = '@unqualified.smarthost.invalid';
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/; // a dot-atom with no "@": an unqualified address

/** In header order; when any Resent- field exists only the Resent- ones count (RFC 5322 §3.6.6, sendmail). */
function recipientsOf(m: Buffer, fields: readonly Field[]): string[] {
  const resent = fields.some((f) => f.name.startsWith('resent-'));
  const wanted = resent ? RESENT_RCPT_FIELDS : RCPT_FIELDS;
  const seen = new Map<string, string>(); // lowercased -> first spelling
  for (const f of fields) {
    if (!wanted.has(f.name)) continue;
    for (const address of addressesIn(fieldValue(m, f))) {
      const key = address.toLowerCase();
      if (!seen.has(key)) seen.set(key, address);
    }
  }
  return [...seen.values()];
}

/** The unfolded value (RFC 5322 §2.2.3), decoded as UTF-8 for RFC 6532 addresses. */
function fieldValue(m: Buffer, f: Field): string {
  const raw = m.toString('utf8', f.start, f.end);
  return raw.slice(raw.indexOf(':') + 1).replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '');
}

/** Mailboxes of an address list, groups flattened; display names without an address dropped. */
function addressesIn(value: string): string[] {
  const tagged = tagBareLocalParts(value).replace(/<([^<>@\s",]+)>/g, `<$1${UNQUALIFIED}>`);
  return addressparser(tagged, { flatten: true }).filter((e) => e.address !== '').map((e) => untag(e.address));
}

/**
 * Tags each list element that is one bare word ("root", "root (Cron Daemon)") as an unqualified
 * address. Elements are split at "," ";" ":" outside quotes, comments and <>; a word before ":"
 * is a group name, and a quoted word is a display name, so neither is tagged.
 */
function tagBareLocalParts(value: string): string {
  let out = '';
  let seg = ''; // the element as written
  let bare = ''; // the element without comments
  let quoted = false;
  let comment = 0; // comments nest (RFC 5322 §3.2.2)
  let angle = false;
  const flush = (sep: string) => {
    const word = bare.trim();
    out += (sep !== ':' && LOCAL_PART.test(word) ? ` ${word}${UNQUALIFIED} ` : seg) + sep;
    seg = '';
    bare = '';
  };
  for (let k = 0; k < value.length; k++) {
    const c = value[k]!;
    if (c === '\\' && (quoted || comment > 0)) { // quoted-pair: the next character is literal
      const pair = c + (value[k + 1] ?? '');
      k++;
      seg += pair;
      if (comment === 0) bare += pair;
      continue;
    }
    if (comment > 0) {
      seg += c;
      if (c === '(') comment++;
      else if (c === ')') comment--;
      continue;
    }
    if (!quoted && !angle && (c === ',' || c === ';' || c === ':')) { flush(c); continue; }
    if (!quoted && !angle && c === '(') { comment = 1; seg += c; continue; }
    if (c === '"' && !angle) quoted = !quoted;
    else if (!quoted && c === '<') angle = true;
    else if (!quoted && c === '>') angle = false;
    seg += c;
    bare += c;
  }
  flush('');
  return out;
}

function untag(address: string): string {
  return address.toLowerCase().endsWith(UNQUALIFIED) ? address.slice(0, -UNQUALIFIED.length) : address;
}

// ---- fields added when missing ------------------------------------------------------------

function missingFields(fields: readonly Field[], facts: SubmissionFacts): string[] {
  const has = (name: string) => fields.some((f) => f.name === name);
  const added: string[] = [];
  if (!has('from')) added.push(`From: ${fromValue(facts)}`);
  if (!has('date')) added.push(`Date: ${rfc5322Date(facts.now)}`);
  if (!has('message-id')) added.push(`Message-ID: ${messageId(facts)}`);
  return added;
}

function fromValue(facts: SubmissionFacts): string {
  const address = facts.sender === '' ? `MAILER-DAEMON@${facts.hostname}` : facts.sender;
  assertHeaderSafe(address, 'sender');
  const name = cleanName(facts.fullName ?? '');
  return name === '' ? address : `${displayName(name)} <${address}>`;
}

/** `<YYYYMMDDhhmmss.RANDOMHEX@hostname>`: the UTC stamp sorts, 64 random bits keep it unique. */
function messageId(facts: SubmissionFacts): string {
  assertHeaderSafe(facts.hostname, 'hostname');
  const stamp = facts.now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `<${stamp}.${randomBytes(8).toString('hex')}@${facts.hostname}>`;
}

/** The caller validates sender and hostname; a line break here would forge header fields. */
function assertHeaderSafe(value: string, what: string): void {
  if (/[\x00-\x1f\x7f<>]/.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot go into a header`);
}

/** A GECOS or -F name is free text: control characters (CR, LF) could start new header fields. */
function cleanName(name: string): string {
  return name.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

const ATOMS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$/; // RFC 5322 §3.2.3 atext and spaces

/** RFC 5322 §3.2.5 phrase: atoms as they are, else a quoted-string; non-ASCII as RFC 2047 words. */
export function displayName(name: string): string {
  if (/[^\x00-\x7f]/.test(name)) return encodedWords(name);
  if (ATOMS.test(name) && !name.includes('=?')) return name; // "=?" would read as an encoded word
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

// RFC 2047 §2: an encoded-word is at most 75 characters. 45 bytes -> 60 base64 characters,
// plus 12 for "=?UTF-8?B?" and "?=". Words split between characters, never inside one (§5).
const WORD_BYTES = 45;

function encodedWords(name: string): string {
  const words: string[] = [];
  let chunk = '';
  for (const ch of name) {
    if (Buffer.byteLength(chunk + ch, 'utf8') > WORD_BYTES) { words.push(chunk); chunk = ''; }
    chunk += ch;
  }
  words.push(chunk);
  // Folding whitespace between encoded-words is ignored when decoding (RFC 2047 §6.2).
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}
