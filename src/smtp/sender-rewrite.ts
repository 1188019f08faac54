// Sender rewriting for mail that leaves this host (Postfix myorigin + smtp_generic_maps): a box
// that sends as root@applesauce.localdomain gets an address its ISP accepts. Rewrites the
// envelope sender and the address fields of the header section; every other byte of the
// message, and every field with nothing to change, leaves exactly as it was stored.
// Null-sender mail (bounces) is never touched.
import { Readable } from 'node:stream';
import type { OutgoingMessage } from '../mail/delivery.js';
import { domainOf } from '../mail/address.js';
import { readHead, toBuffer } from '../mail/header-section.js';

export interface SenderRules {
  /** As in the config: an exact address, or "@domain" for every address there -> the new address. Keys match case-insensitively. */
  readonly map: Readonly<Record<string, string>>;
  /** Qualifies bare names: root -> root@hostname. */
  readonly hostname: string;
}

// ---------------------------------------------------------------------------------------------
// Addresses

const lookupTables = new WeakMap<SenderRules, ReadonlyMap<string, string>>();

/** The map with lower-cased keys, built once per rules object (the config is frozen). */
function lookupTable(rules: SenderRules): ReadonlyMap<string, string> {
  let table = lookupTables.get(rules);
  if (!table) {
    table = new Map(Object.entries(rules.map).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
    lookupTables.set(rules, table);
  }
  return table;
}

/**
 * Bare local names are qualified with hostname; then an exact key wins over an "@domain" key;
 * otherwise unchanged. '' (null sender) stays ''.
 * A bare name with no map entry still leaves qualified: RFC 5321 §4.1.2 has no bare names in
 * MAIL FROM, and Postfix's append_at_myorigin does the same.
 */
export function rewriteAddress(address: string, rules: SenderRules): string {
  if (address === '') return '';
  const qualified = address.includes('@') || rules.hostname === '' ? address : `${address}@${rules.hostname}`;
  const table = lookupTable(rules);
  const to = table.get(qualified.toLowerCase()) ?? table.get(`@${domainOf(qualified)}`);
  if (to === undefined) return qualified;
  // "@box" = "@example.com": keep the user, change the domain (Postfix generic "@domain @domain2")
  return to.startsWith('@') ? `${qualified.slice(0, qualified.lastIndexOf('@'))}${to}` : to;
}

// ---------------------------------------------------------------------------------------------
// Address fields (RFC 5322 §3.4)
//
// nodemailer's addressparser returns names unquoted and decoded and no offsets, so a field
// rebuilt from it would lose the display names as written. The lexer below only finds where
// each address sits in the raw field, and the rewrite splices new addresses into those places:
// display names, comments, groups and folding stay byte for byte.

type TokenKind = 'word' | 'special' | 'comment' | 'space';
interface Token { readonly kind: TokenKind; readonly start: number; readonly end: number }

const SPACE = /[ \t\r\n]/;
const SPECIALS = '<>@,;:.';
const ATOM_END = /[ \t\r\n"(\[<>@,;:.]/;

/** Just past the closer of the quoted string, comment or domain literal opened at `from` (or the end of the text). Only comments nest. */
function closingEnd(text: string, from: number, close: string): number {
  const nests = text[from] === '(';
  let depth = 1;
  for (let i = from + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === close && --depth === 0) return i + 1;
    else if (nests && c === '(') depth++;
  }
  return text.length;
}

function tokenEnd(text: string, i: number): { kind: TokenKind; end: number } {
  const c = text[i]!;
  if (SPACE.test(c)) {
    let end = i + 1;
    while (end < text.length && SPACE.test(text[end]!)) end++;
    return { kind: 'space', end };
  }
  if (c === '"') return { kind: 'word', end: closingEnd(text, i, '"') };
  if (c === '[') return { kind: 'word', end: closingEnd(text, i, ']') };
  if (c === '(') return { kind: 'comment', end: closingEnd(text, i, ')') };
  if (SPECIALS.includes(c)) return { kind: 'special', end: i + 1 };
  let end = i + 1;
  while (end < text.length && !ATOM_END.test(text[end]!)) end++;
  return { kind: 'word', end };
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (let start = 0; start < text.length;) {
    const { kind, end } = tokenEnd(text, start);
    tokens.push({ kind, start, end });
    start = end;
  }
  return tokens;
}

/** Where one address sits in a field value, and the address as written (CFWS dropped). */
interface AddressSpan { readonly start: number; readonly end: number; readonly address: string }

const DOT_ATOM_TEXT = /^[^\s"(),.:;<>@[\\\]]+(\.[^\s"(),.:;<>@[\\\]]+)*$/;

/** The address the tokens spell; a quoted local part that needs no quotes loses them ("root"@x is root@x). */
function spell(text: string, tokens: readonly Token[]): string {
  return tokens.map((t) => {
    const s = text.slice(t.start, t.end);
    const inner = s.slice(1, -1);
    return s.startsWith('"') && s.endsWith('"') && s.length > 1 && DOT_ATOM_TEXT.test(inner) ? inner : s;
  }).join('');
}

/** A run of words joined by '.' and at most one '@': an addr-spec or a bare name, not a phrase. */
function isAddrSpec(text: string, tokens: readonly Token[]): boolean {
  if (tokens.length === 0 || tokens[0]!.kind !== 'word' || tokens.at(-1)!.kind !== 'word') return false;
  let ats = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'word' && i > 0 && tokens[i - 1]!.kind === 'word') return false;
    if (t.kind === 'special' && text[t.start] === '@') ats++;
    else if (t.kind === 'special' && text[t.start] !== '.') return false;
  }
  return ats <= 1;
}

/** The address of one angle-addr: what is between '<' and '>', without an obsolete route (RFC 5322 §4.4). */
function angleSpan(text: string, tokens: readonly Token[], open: number, close: number): AddressSpan {
  let inner = tokens.slice(open + 1, close).filter((t) => t.kind === 'word' || t.kind === 'special');
  const route = inner.map((t) => text.slice(t.start, t.end)).lastIndexOf(':');
  if (route >= 0) inner = inner.slice(route + 1);
  return { start: tokens[open]!.end, end: tokens[close]!.start, address: spell(text, inner) };
}

/** One mailbox's address, or none when the mailbox is empty or malformed. */
function mailboxSpan(text: string, words: readonly Token[], angle: AddressSpan | undefined): AddressSpan | undefined {
  if (angle) return angle;
  if (!isAddrSpec(text, words)) return undefined;
  return { start: words[0]!.start, end: words.at(-1)!.end, address: spell(text, words) };
}

function closingAngle(text: string, tokens: readonly Token[], open: number): number {
  for (let j = open + 1; j < tokens.length; j++) {
    if (tokens[j]!.kind === 'special' && text[tokens[j]!.start] === '>') return j;
  }
  return -1;
}

/** Every address in an address-list field value, in order. Group names and display names are skipped over. */
function addressSpans(text: string): AddressSpan[] {
  const tokens = tokenize(text);
  const spans: AddressSpan[] = [];
  let words: Token[] = [];
  let angle: AddressSpan | undefined;
  const finish = (): void => {
    const span = mailboxSpan(text, words, angle);
    if (span) spans.push(span);
    words = [];
    angle = undefined;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const c = t.kind === 'special' ? text[t.start] : '';
    if (t.kind === 'space' || t.kind === 'comment') continue;
    if (c === '<') {
      const close = closingAngle(text, tokens, i);
      if (close < 0 || angle) return spans;   // unclosed or a second '<': too broken to touch the rest
      angle = angleSpan(text, tokens, i, close);
      i = close;
    } else if (c === ',' || c === ';') finish();
    else if (c === ':') { words = []; angle = undefined; }   // what came before was a group name
    else words.push(t);
  }
  finish();
  return spans;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Header bytes (as latin1) to the string the config speaks, or undefined when they are not UTF-8. */
function fromHeaderBytes(latin1: string): string | undefined {
  try {
    return UTF8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return undefined;   // cannot be compared with config keys reliably: leave it as written
  }
}

function toHeaderBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** The field value with each address that rewrites to something else replaced; the same string when none does. */
function rewriteValue(value: string, rules: SenderRules): string {
  const pieces: string[] = [];
  let done = 0;
  for (const span of addressSpans(value)) {
    const address = fromHeaderBytes(span.address);
    if (address === undefined) continue;
    const rewritten = rewriteAddress(address, rules);
    if (rewritten === address) continue;
    pieces.push(value.slice(done, span.start), toHeaderBytes(rewritten));
    done = span.end;
  }
  return pieces.length === 0 ? value : pieces.join('') + value.slice(done);
}

// ---------------------------------------------------------------------------------------------
// Header section

const SENDER_FIELDS = new Set(['from', 'sender', 'reply-to', 'resent-from', 'resent-sender']);
const FIELD_NAME = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/** Splits a header section into fields, each with its continuation lines and line ends; the blank line and anything after it is the last piece. */
function splitFields(head: string): string[] {
  const lines = head.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const fields: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '\r\n' || line === '\n') { fields.push(lines.slice(i).join('')); break; }
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += line;
    else fields.push(line);
  }
  return fields;
}

/** One field, rewritten when it is a sender field with an address to change; otherwise the same string. */
function rewriteField(field: string, rules: SenderRules): string {
  const name = FIELD_NAME.exec(field);
  if (!name || !SENDER_FIELDS.has(name[1]!.toLowerCase())) return field;
  const ending = /\r?\n$/.exec(field)?.[0] ?? '';
  const value = field.slice(name[0].length, field.length - ending.length);
  const rewritten = rewriteValue(value, rules);
  return rewritten === value ? field : name[0] + rewritten + ending;
}

/**
 * Rewrites the addresses in From, Sender, Reply-To (and Resent-From, Resent-Sender) of a header
 * section (CRLF, including the final empty line). Unchanged fields stay byte-identical; when no
 * field changes, `head` itself is returned.
 */
export function rewriteHead(head: Buffer, rules: SenderRules): Buffer {
  const fields = splitFields(head.toString('latin1'));
  const rewritten = fields.map((f) => rewriteField(f, rules));
  if (rewritten.every((f, i) => f === fields[i])) return head;
  return Buffer.from(rewritten.join(''), 'latin1');
}

// ---------------------------------------------------------------------------------------------
// The message as it leaves

/** `head`, then what `open()` gives after its first `skip` bytes. Opens the source only when read; destroys it when done, failed or abandoned. */
async function* withHead(open: () => Readable, skip: number, head: Buffer): AsyncGenerator<Buffer> {
  yield head;
  const source = open();
  try {
    let left = skip;
    for await (const chunk of source) {
      const buf = toBuffer(chunk);
      if (left >= buf.length) { left -= buf.length; continue; }
      yield left > 0 ? buf.subarray(left) : buf;
      left = 0;
    }
    if (left > 0) throw new Error(`message body is shorter than its header section (${skip} bytes)`);
  } finally {
    source.destroy();
  }
}

/** A copy of `msg` with another sender, size and body; keeps the optional fields only where msg has them. */
function withChanges(msg: OutgoingMessage, sender: string, size: number, body: () => Readable): OutgoingMessage {
  return {
    id: msg.id, sender, recipients: msg.recipients, size, eightBit: msg.eightBit, body,
    ...(msg.ret !== undefined ? { ret: msg.ret } : {}),
    ...(msg.envid !== undefined ? { envid: msg.envid } : {}),
  };
}

/**
 * The message as it leaves: envelope sender and header fields rewritten; null-sender mail
 * (bounces) returned unchanged, and `msg` itself when nothing changes. The new body() streams:
 * only the header section is held in memory, and each call opens msg.body() afresh.
 */
export async function rewriteOutgoing(msg: OutgoingMessage, rules: SenderRules): Promise<OutgoingMessage> {
  if (msg.sender === '') return msg;
  const sender = rewriteAddress(msg.sender, rules);
  // Nothing to map and a qualified sender: skip reading the message (an extra open and read per
  // delivery otherwise; bench/NOTES.md). A bare name in From is then left as it is;
  // mail with bare header names comes from local programs, whose `smarthost sendmail` writes a full From.
  if (sender === msg.sender && lookupTable(rules).size === 0) return msg;
  const head = await readHead(msg.body());
  if (head !== undefined) {
    const newHead = rewriteHead(head, rules);
    if (newHead !== head) {
      const size = msg.size + newHead.length - head.length;
      // objectMode off: a byte stream, like the spool file msg.body() reads, whatever the consumer expects of it.
      const body = (): Readable => Readable.from(withHead(() => msg.body(), head.length, newHead), { objectMode: false });
      return withChanges(msg, sender, size, body);
    }
  }
  return sender === msg.sender ? msg : withChanges(msg, sender, msg.size, () => msg.body());
}
