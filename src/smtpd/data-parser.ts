// The DATA phase, byte by byte: where the message ends and which dots are
// transparency dots (RFC 5321 §4.5.2). Pure and incremental: push() takes the
// socket's chunks as they come, cut anywhere, and gives the same result for any
// cut. Hand-written because smtp-server's parser keeps a line's leading dot
// unless a second one follows (`.x` stays `.x`), and that cannot be repaired
// after it: its `.x` may have been `..x`.
//
// The rules are Postfix smtpd's with `smtpd_forbid_bare_newline = normalize`
// (receive_data_message() in smtpd.c):
// - a line starts at the beginning of DATA and after every LF, bare or not;
//   a bare CR does not end a line;
// - the line "." ends DATA only as <CR><LF>.<CR><LF> (or ".<CR><LF>" first);
// - a "." line that ends in a bare LF, or follows one, is dropped whole: it is
//   neither the end (that would be SMTP smuggling) nor stored;
// - any other line starting with "." loses that first dot.
// Everything else passes unchanged, line ends included (cleanup/line-ends.ts
// makes them CRLF later). Candidates are found with Buffer.indexOf("\n."), so
// ordinary text is not looked at byte by byte.
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.');

export interface Parsed {
  /** Message bytes, in order (slices of the input: copy them before the input is reused). */
  readonly content: Buffer[];
  /** Set once the message has ended: the bytes after the terminator (the next commands). */
  readonly rest?: Buffer;
}

/** What a dot at a line start means, decided from the bytes after it. */
type DotLine = 'wait' | 'end' | 'drop2' | 'drop3' | 'strip';

export class DataParser {
  /** The next byte starts a line. */
  private lineStart = true;
  /** The line end before that line was a bare LF (only meaningful with lineStart). */
  private afterBareLf = false;
  /** The last byte pushed was CR (for an LF that opens the next chunk). */
  private lastCr = false;
  /** A line-starting dot (and a CR after it) whose meaning the next chunk decides. */
  private held: Buffer | undefined;
  private ended = false;

  push(chunk: Buffer): Parsed {
    if (this.ended) throw new Error('DataParser: push() after the end of DATA');
    const c = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = undefined;
    const content: Buffer[] = [];
    const emit = (from: number, to: number) => { if (to > from) content.push(c.subarray(from, to)); };
    let from = 0;
    let i = 0; // the line start being looked at, when lineStart
    for (;;) {
      if (this.lineStart) {
        if (i >= c.length) break;
        const what = c[i] === DOT ? dotLine(c, i, this.afterBareLf) : undefined;
        if (what === 'wait') {
          emit(from, i);
          this.held = Buffer.from(c.subarray(i)); // at most ".\r": a copy, the caller may reuse its buffer
          return { content };
        }
        if (what === 'end') {
          emit(from, i);
          this.ended = true;
          return { content, rest: c.subarray(i + 3) };
        }
        if (what === 'drop2' || what === 'drop3') {
          emit(from, i);
          const n = what === 'drop2' ? 2 : 3;
          from = i += n;
          this.afterBareLf = n === 2;
          continue;
        }
        if (what === 'strip') {
          emit(from, i);
          from = i + 1;
          i += 1;
        }
        this.lineStart = false;
      }
      const p = c.indexOf(LF_DOT, i);
      if (p === -1) break;
      this.afterBareLf = p > 0 ? c[p - 1] !== CR : !this.lastCr;
      this.lineStart = true;
      i = p + 1;
    }
    emit(from, c.length);
    if (c.length > 0 && !this.lineStart) {
      // no line-starting dot left in this chunk: does it end a line for the next one?
      const last = c[c.length - 1];
      if (last === LF) {
        this.lineStart = true;
        this.afterBareLf = c.length > 1 ? c[c.length - 2] !== CR : !this.lastCr;
      }
    }
    if (c.length > 0) this.lastCr = c[c.length - 1] === CR;
    return { content };
  }
}

/** The line starting at `i` with a dot: ".\r\n" ends DATA unless a bare LF is next to it; ".\n" and bare-LF "." lines are dropped. */
function dotLine(c: Buffer, i: number, afterBareLf: boolean): DotLine {
  if (i + 1 >= c.length) return 'wait';
  const b1 = c[i + 1];
  if (b1 === LF) return 'drop2';
  if (b1 !== CR) return 'strip';
  if (i + 2 >= c.length) return 'wait';
  if (c[i + 2] !== LF) return 'strip'; // ".\rx": a line with more than the dot
  return afterBareLf ? 'drop3' : 'end';
}
