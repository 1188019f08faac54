// How each line a client sends ends: CRLF, or a bare LF. smtp-server's parser splits
// command lines on /\r?\n/ and hands the guard a command without its ending, so the
// ending is recorded here from the socket's bytes, before the parser reads them
// (Connection.recordLineEnds in smtpd-server.ts), and the guard takes one record per command
// line, in order. No option of smtp-server exposes the ending, and patching its parser
// is what we do not do. Message content is not ours to judge (the DATA parser is):
// from the 354 on, records are dropped up to the line that ends the message, by the
// parser's own rule (RFC 5321 §4.1.1.4: "." alone after a CRLF, or as the first line).

interface LineEnd {
  /** Ended by LF without CR before it. */
  readonly bare: boolean;
  /** The line is exactly "." and ended by CRLF. */
  readonly dot: boolean;
  /** The line before it ended by CRLF. */
  readonly afterCrlf: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

export class LineLedger {
  private readonly ends: LineEnd[] = [];
  /** Bytes of the line being read so far, and its first byte. */
  private lineBytes = 0;
  private firstByte = -1;
  /** The last byte of the previous chunk was CR (a CRLF may straddle two chunks). */
  private crBefore = false;
  private prevCrlf = true;
  /** In message content: records are dropped until the line that ends it. */
  private content = false;
  private contentStart = false;

  /** Every chunk the socket delivers, in order. */
  feed(chunk: Buffer): void {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      const before = lf > 0 ? chunk[lf - 1] === CR : this.crBefore;
      const length = this.lineBytes + (lf - start) - (before ? 1 : 0);
      const first = this.lineBytes > 0 ? this.firstByte : lf > start ? chunk[start]! : -1;
      this.record({ bare: !before, dot: before && length === 1 && first === DOT, afterCrlf: this.prevCrlf });
      this.prevCrlf = before;
      this.lineBytes = 0;
      this.firstByte = -1;
      start = lf + 1;
    }
    if (start < chunk.length) {
      if (this.lineBytes === 0) this.firstByte = chunk[start]!;
      this.lineBytes += chunk.length - start;
    }
    if (chunk.length) this.crBefore = chunk[chunk.length - 1] === CR;
  }

  /** The next command line's ending: true for a bare LF; undefined if no line was recorded (a last line without ending). */
  nextIsBare(): boolean | undefined {
    return this.content ? undefined : this.ends.shift()?.bare;
  }

  /** The 354 went out: what follows is message content, up to its final ".". */
  startContent(): void {
    this.content = true;
    this.contentStart = true;
    while (this.content && this.ends.length) this.skip(this.ends.shift()!);
  }

  /** STARTTLS: what was sent in plaintext after it is discarded (smtp-server retires its parser); the TLS session starts afresh. */
  reset(): void {
    this.ends.length = 0;
    this.lineBytes = 0;
    this.firstByte = -1;
    this.crBefore = false;
    this.prevCrlf = true;
    this.content = false;
  }

  private record(e: LineEnd): void {
    if (this.content && !this.ends.length) this.skip(e);
    else this.ends.push(e);
  }

  private skip(e: LineEnd): void {
    if (e.dot && (this.contentStart || e.afterCrlf)) this.content = false;
    this.contentStart = false;
  }
}
