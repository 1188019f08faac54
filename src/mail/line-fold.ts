// Lines longer than 998 octets are broken on the way out, as Postfix does
// (smtp_line_length_limit = 998, smtp_text_out() in smtp_proto.c): after 998
// octets comes <CR><LF><SPACE>, in headers and body alike, so a header stays a
// header (a folded one) and MIME structure survives. RFC 5321 §4.5.3.1.6 allows
// 1000 octets with the CRLF, not counting a transparency dot, so the dot that
// nodemailer doubles later does not count either, and a continuation starts with
// a space, never a dot. Unlike Postfix, a cut never splits a UTF-8 sequence: it
// moves back to the start of the character. The spool keeps the message as it
// came (CRLF only, cleanup/line-ends.ts); this runs at send time.
import { Transform, type Readable, pipeline } from 'node:stream';

export const LINE_LIMIT = 998;
const CR = 0x0d;
const LF = 0x0a;
const BREAK = Buffer.from('\r\n ');

export class LineFold {
  /** Octets of the current line already passed on in earlier chunks (the inserted space included). */
  private carried = 0;
  /** The current line is the continuation of a broken one (it starts with the inserted space). */
  private cont = false;
  /** How many lines were broken so far. */
  folds = 0;

  constructor(private readonly limit = LINE_LIMIT) {}

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let from = 0;
    let s = -this.carried; // where the current line starts, in this chunk's offsets
    for (;;) {
      const cut = s + this.limit; // the first octet past the limit
      const last = Math.min(cut, chunk.length - 1);
      const lf = last >= 0 ? chunk.lastIndexOf(LF, last) : -1;
      if (lf >= Math.max(s, 0)) { s = lf + 1; this.cont = false; continue; } // the line ends in time
      if (cut >= chunk.length) break; // not decided yet: the line goes on in the next chunk
      if (chunk[cut] === CR) { s = cut + 1; this.cont = false; continue; } // 998 octets, then its CRLF
      // keep at least one octet of text in the line; octets of earlier chunks are already sent
      const at = charStart(chunk, cut, Math.max(s + (this.cont ? 2 : 1), from, 0));
      if (at > from) out.push(chunk.subarray(from, at));
      out.push(BREAK);
      this.folds++;
      from = at;
      s = at - 1; // the space is the new line's first octet
      this.cont = true;
    }
    if (from < chunk.length) out.push(chunk.subarray(from));
    this.carried = chunk.length - s;
    return out;
  }
}

/** `at`, moved back over UTF-8 continuation octets (10xxxxxx) to a character's first octet, but not below `min`. */
function charStart(chunk: Buffer, at: number, min: number): number {
  let i = at;
  while (i > min && i > at - 3 && (chunk[i]! & 0xc0) === 0x80) i--;
  return (chunk[i]! & 0xc0) === 0x80 ? at : i;
}

/** `body` with every line cut to at most 998 octets; errors and destroy() travel both ways. */
export function foldLongLines(body: Readable): Readable {
  const fold = new LineFold();
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      for (const part of fold.push(chunk)) this.push(part);
      done();
    },
  });
  return pipeline(body, t, () => undefined);
}
