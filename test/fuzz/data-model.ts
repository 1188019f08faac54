// The reference for the DATA phase: RFC 5321 §4.5.2 with Postfix smtpd's
// `smtpd_forbid_bare_newline = normalize` rules, written line by line on the
// whole input so that it is obviously right (src/smtpd/data-parser.ts is the
// incremental, indexOf-driven version the daemon runs). A line ends at LF; it
// ended in CRLF if the byte before the LF is CR.
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export interface ModelResult { readonly content: Buffer; readonly rest: Buffer }

/** The message and the bytes after its terminator, or undefined when the input never ends DATA. */
export function dataModel(input: Buffer): ModelResult | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  let prevBareLf = false;
  for (;;) {
    const nl = input.indexOf(LF, pos);
    if (nl === -1) return undefined;
    const line = input.subarray(pos, nl + 1);
    const crlf = nl > pos && input[nl - 1] === CR;
    const text = line.subarray(0, line.length - (crlf ? 2 : 1));
    if (text.length === 1 && text[0] === DOT) {
      // "." alone: the end, unless a bare LF ends it or the line before (then it is dropped)
      if (crlf && !prevBareLf) return { content: Buffer.concat(out), rest: input.subarray(nl + 1) };
    } else {
      out.push(text[0] === DOT ? line.subarray(1) : line);
    }
    prevBareLf = !crlf;
    pos = nl + 1;
  }
}

/** What an SMTP client sends for `message` (RFC 5321 §4.5.2): a dot doubled at each line start, then CRLF.CRLF. */
export function dotStuff(message: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  if (message[0] === DOT) parts.push(Buffer.from('.'));
  for (let i = message.indexOf(LF); i !== -1; i = message.indexOf(LF, i + 1)) {
    if (message[i + 1] === DOT) { parts.push(message.subarray(from, i + 1), Buffer.from('.')); from = i + 1; }
  }
  parts.push(message.subarray(from));
  const ends = message.length === 0 || message.subarray(-2).equals(Buffer.from('\r\n'));
  parts.push(Buffer.from(ends ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(parts);
}

/** What cleanup/line-ends.ts makes of content: every CRLF, bare CR and bare LF becomes CRLF. */
export function crlfModel(content: Buffer): Buffer {
  return Buffer.from(content.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}
