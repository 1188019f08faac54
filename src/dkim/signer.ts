// DKIM-Signature fields for one message (RFC 6376 relaxed/relaxed; RSA-SHA256, and
// Ed25519-SHA256 per RFC 8463), with From and the fields readers see oversigned (§8.15).
// Hand-written on node:crypto because mailauth 4.13.3's signer (1) lists in h= only the
// fields present, so it cannot oversign; (2) folds whitespace with /\s/, which in its
// latin1 view of the bytes also matches 0xA0, a byte of many UTF-8 characters ("voilà"),
// so a strict verifier (dkimpy, RFC 6376 §3.4.2) rejects its signature of such a header;
// (3) hashes the body a byte at a time (bench/NOTES.md). Tests check this signer
// against mailauth's body hash and verify its output with mailauth and python3-dkim.
import crypto, { type KeyObject } from 'node:crypto';
import type { HeaderField } from '../mail/header-section.js';
import type { DkimAlgorithm } from './key.js';

/** Relaxed body canonicalization (§3.4.4) into SHA-256, fed the body in any chunking. */
export class RelaxedBodyHash {
  private readonly hash = crypto.createHash('sha256');
  /** The last line so far, not yet ended by CRLF (latin1: one char per byte). */
  private partial = '';
  /** Empty lines seen but not hashed: empty lines at the end of the body are dropped. */
  private blank = 0;

  update(chunk: Buffer): void {
    const text = this.partial + chunk.toString('latin1');
    const end = text.lastIndexOf('\r\n');
    if (end < 0) { this.partial = text; return; }
    this.partial = text.slice(end + 2);
    this.lines(text.slice(0, end + 2));
  }

  /** Whole lines, each ending in CRLF: runs of WSP become one SP, WSP before CRLF goes. */
  private lines(text: string): void {
    const canon = text.replace(/[ \t]+/g, ' ').replace(/ \r\n/g, '\r\n');
    let trailing = 1; // CRLFs at the end; counted by hand: /(?:\r\n)+$/ tries every position
    while (2 * (trailing + 1) <= canon.length && canon.startsWith('\r\n', canon.length - 2 * (trailing + 1))) trailing++;
    const content = canon.slice(0, canon.length - trailing * 2);
    if (content === '') { this.blank += trailing; return; }
    this.hash.update('\r\n'.repeat(this.blank) + content + '\r\n', 'latin1');
    this.blank = trailing - 1;
  }

  /** base64 of the hash; a last line without CRLF gets one, trailing empty lines none. */
  digest(): string {
    if (this.partial !== '') this.lines(`${this.partial}\r\n`);
    this.partial = '';
    return this.hash.digest('base64');
  }
}

/** Relaxed header canonicalization (§3.4.2), without the CRLF. WSP is SP and HTAB only. */
export function relaxedHeader(raw: string): string {
  const colon = raw.indexOf(':');
  const value = raw.slice(colon + 1).replace(/\r\n(?=[ \t])/g, '').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
  return `${raw.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase()}:${value}`;
}

/**
 * Fields signed one more time than they occur, so one added later breaks the signature: the
 * ones a reader sees as the message's author, subject and addressees (rspamd's "(o)" set).
 */
export const OVERSIGNED = new Set(['from', 'reply-to', 'subject', 'to', 'cc']);

/** h= names and the canonicalized fields they cover: each name's instances bottom-up (§5.4.2). */
export function signedFields(fields: readonly HeaderField[], names: readonly string[]): { h: string[]; data: string } {
  const h: string[] = [];
  let data = '';
  for (const name of names) {
    const present = fields.filter((f) => f.name === name).reverse();
    for (const f of present) { h.push(name); data += `${relaxedHeader(f.raw)}\r\n`; }
    if (OVERSIGNED.has(name)) h.push(name); // a field that is not there counts as the empty string
  }
  return { h, data };
}

/** Folds `words` joined by `sep` into lines of about 76 characters, continuation lines starting with a tab. */
function fold(first: string, words: readonly string[], sep: string): string {
  let out = first;
  let line = first.length - first.lastIndexOf('\n') - 1;
  words.forEach((w, i) => {
    const piece = (i === 0 ? '' : sep) + w;
    if (line + piece.length > 76 && i > 0) { out += `${sep}\r\n\t${w}`; line = 1 + w.length; } else { out += piece; line += piece.length; }
  });
  return out;
}

export interface SignRequest {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly key: KeyObject;
  readonly headers: readonly string[];
}

/** One DKIM-Signature field, CRLF-terminated, over these header fields and body hash. */
export function dkimSignature(fields: readonly HeaderField[], bodyHash: string, r: SignRequest, now = new Date()): string {
  const { h, data } = signedFields(fields, r.headers);
  const tags = `v=1; a=${r.algorithm}; c=relaxed/relaxed; d=${r.domain}; s=${r.selector};\r\n\tt=${Math.floor(now.getTime() / 1000)}; `;
  const unsigned = `${fold(`DKIM-Signature: ${tags}h=`, h, ':')};\r\n\tbh=${bodyHash};\r\n\tb=`;
  // the field itself is hashed last, b= empty and without its CRLF (§3.7)
  const input = Buffer.from(data + relaxedHeader(unsigned), 'latin1');
  const signature = r.algorithm === 'rsa-sha256'
    ? crypto.sign('sha256', input, r.key)
    : crypto.sign(null, crypto.createHash('sha256').update(input).digest(), r.key); // RFC 8463 §3: Ed25519 signs the SHA-256 hash
  const b64 = signature.toString('base64');
  const chunks = b64.match(/.{1,72}/g)!;
  return `${unsigned}${chunks.join('\r\n\t')}\r\n`;
}
