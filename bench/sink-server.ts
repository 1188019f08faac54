// The counting sink for the relay bench: a child process (no disk) that
// answers 250 to everything and reports, per message, the number in its
// top-level "X-Bench-Id:" header and the moment its final dot arrived. Times
// are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock every process
// on the machine shares, so the parent can subtract its own 250 times.
// Reports go to the parent over IPC in batches; the parent's messages are not
// read. Messages without the header (e.g. a bounce) are counted as "other".
//
// Hand-written SMTP on a raw node:net server on purpose: this is measurement
// apparatus, not product code, and on a 2-core machine every CPU ms it spends
// is taken from the system under test, so it must cost as little as possible
// (like Postfix's smtp-sink). It speaks just enough ESMTP for nodemailer,
// Postfix's smtp(8) and swaks: no TLS, no AUTH, no CHUNKING, no checks; the
// message content is scanned natively for its end and otherwise discarded.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** What the sink sends to its parent. */
export type SinkReport =
  | { readonly kind: 'listening'; readonly port: number }
  | { readonly kind: 'arrivals'; readonly ids: number[]; readonly at: number[]; readonly other: number; readonly connections: number };

const HEADER = /^X-Bench-Id:[ \t]*(\d+)[ \t]*$/im;
/** The header block is searched in at most this many bytes: Received lines come first. */
const MAX_HEAD = 64 * 1024;
/** A command line longer than this is no client of ours: drop the connection. */
const MAX_LINE = 64 * 1024;
const REPORT_EVERY_MS = 25;
const END = Buffer.from('\r\n.\r\n');
const CRLF = Buffer.from('\r\n');

const EHLO = ['250-sink.test', '250-PIPELINING', '250-8BITMIME', '250-SMTPUTF8', '250-SIZE 52428800', '250 ENHANCEDSTATUSCODES', ''].join('\r\n');
const REPLIES = new Map<string, string>([
  ['EHLO', EHLO],
  ['HELO', '250 sink.test\r\n'],
  ['MAIL', '250 2.1.0 Ok\r\n'],
  ['RCPT', '250 2.1.5 Ok\r\n'],
  ['DATA', '354 End data with <CR><LF>.<CR><LF>\r\n'],
  ['RSET', '250 2.0.0 Ok\r\n'],
  ['NOOP', '250 2.0.0 Ok\r\n'],
  ['QUIT', '221 2.0.0 Bye\r\n'],
]);
const UNKNOWN = '502 5.5.2 Error: command not recognized\r\n';
const QUEUED = '250 2.0.0 Ok: queued by sink\r\n';

const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

let pending: { ids: number[]; at: number[]; other: number } = { ids: [], at: [], other: 0 };
let connections = 0;

function send(report: SinkReport): void {
  process.send?.(report);
}

function flush(): void {
  if (!pending.ids.length && !pending.other) return;
  send({ kind: 'arrivals', ...pending, connections });
  pending = { ids: [], at: [], other: 0 };
}

/** Index just past the "\r\n.\r\n" that ends the message, searching buf from pos; -1 if not in buf. */
function findEnd(tail: Buffer, buf: Buffer, pos: number): number {
  // The terminator may straddle chunks: try the seam (last bytes before + first 4 here) first.
  const seam = Buffer.concat([tail, buf.subarray(pos, pos + 4)]);
  const i = seam.indexOf(END);
  if (i >= 0 && i < tail.length) return pos + i + END.length - tail.length;
  const j = buf.indexOf(END, pos);
  return j < 0 ? -1 : j + END.length;
}

function serve(socket: net.Socket): void {
  connections++;
  socket.on('error', () => socket.destroy()); // ECONNRESET and the like: nothing to report
  const session = new SinkSession(socket);
  socket.on('data', (chunk: Buffer) => session.onData(chunk));
  socket.write('220 sink.test ESMTP bench sink\r\n');
}

/** onData's scanners return the position to go on from, or one of these. */
const MORE = -1; // the rest of this chunk is kept: wait for the next one
const GONE = -2; // the session ended (QUIT, or a line too long): nothing more to write

/** One connection: commands answered from REPLIES; message content scanned for its end and its header only. */
class SinkSession {
  private inData = false;
  private closed = false;
  private line: Buffer | undefined; // a command line split across chunks
  private tail = CRLF;              // the last <= 4 bytes before this chunk's content (at first the DATA line's CRLF)
  private head = '';                // the current message's header bytes (latin1), capped
  private headDone = false;
  private out = '';                 // every reply to this chunk goes out in one write

  constructor(private readonly socket: net.Socket) {}

  onData(chunk: Buffer): void {
    if (this.closed) return;
    const buf = this.line ? Buffer.concat([this.line, chunk]) : chunk;
    this.line = undefined;
    this.out = '';
    let pos = 0;
    while (pos >= 0 && pos < buf.length) pos = this.inData ? this.content(buf, pos) : this.command(buf, pos);
    if (pos !== GONE && this.out) this.socket.write(this.out);
  }

  /** Message content from pos: just past its end, reported; or MORE, with the header and the chunk's last bytes kept. */
  private content(buf: Buffer, pos: number): number {
    const end = findEnd(this.tail, buf, pos);
    if (end < 0) {
      this.keepHead(buf, pos, buf.length);
      const rest = buf.subarray(pos);
      this.tail = Buffer.from(rest.length >= 4 ? rest.subarray(-4) : Buffer.concat([this.tail, rest]).subarray(-4));
      return MORE;
    }
    const at = monoMs(); // the final dot is here
    this.keepHead(buf, pos, end - END.length);
    const m = HEADER.exec(this.head);
    if (m) { pending.ids.push(Number(m[1])); pending.at.push(at); } else pending.other++;
    this.out += QUEUED;
    this.inData = false;
    return end;
  }

  /** One command line from pos, answered: the position after it, MORE if it is not complete, or GONE. */
  private command(buf: Buffer, pos: number): number {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) {
      if (buf.length - pos > MAX_LINE) { this.socket.destroy(); return GONE; }
      this.line = Buffer.from(buf.subarray(pos)); // a copy: do not pin the whole chunk
      return MORE;
    }
    const cmd = buf.toString('latin1', pos, nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl);
    const sp = cmd.indexOf(' ');
    const verb = (sp < 0 ? cmd : cmd.slice(0, sp)).toUpperCase();
    this.out += REPLIES.get(verb) ?? UNKNOWN;
    if (verb === 'DATA') { this.inData = true; this.tail = CRLF; this.head = ''; this.headDone = false; }
    if (verb === 'QUIT') { this.closed = true; this.socket.end(this.out); return GONE; }
    return nl + 1;
  }

  /** Keeps content bytes [from, to) while still in the header block, copying only up to its end. */
  private keepHead(buf: Buffer, from: number, to: number): void {
    if (this.headDone || to <= from) return;
    const piece = buf.subarray(from, Math.min(to, from + MAX_HEAD - this.head.length));
    const blank = piece.indexOf('\r\n\r\n');
    const prev = this.head.length;
    this.head += piece.toString('latin1', 0, blank < 0 ? piece.length : blank + 4);
    const end = this.head.indexOf('\r\n\r\n', Math.max(0, prev - 3)); // may straddle chunks too
    if (end >= 0) { this.head = this.head.slice(0, end); this.headDone = true; } else if (this.head.length >= MAX_HEAD) this.headDone = true;
  }
}

const server = net.createServer({ noDelay: true }, serve);
server.on('error', (e: Error) => process.stderr.write(`sink: ${e.message}\n`));
server.listen(0, '127.0.0.1', () => {
  send({ kind: 'listening', port: (server.address() as AddressInfo).port });
});
setInterval(flush, REPORT_EVERY_MS);
const stop = () => { flush(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
