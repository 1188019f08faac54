// A faster DATA parser for smtp-server. Its SMTPStream._feedDataStream looks at
// every byte of a message in JavaScript, and first copies each socket chunk
// behind the 4 bytes it kept from the one before: the top JavaScript cost of
// taking in 100 KB messages in a CPU profile. This version finds the
// candidates, a dot at the start of a line, with Buffer.indexOf("\n.") (native)
// and only looks at those.
//
// It decides exactly what the original decides, for the same positions: the
// original's security fixes (a "." at the very start of DATA; SMTP smuggling
// through chunk boundaries) depend on which positions are checked. Every case
// that is not the plain one goes to the original code with the stream's state
// untouched: a chunk shorter than 8 bytes, the first bytes of a message when
// bytes are held back from the chunk before, and a line-starting dot that
// straddles the boundary with those held bytes. src/smtpd/data-stream.test.ts
// compares the two on random messages cut into random chunks.
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.');
/** Bytes the original keeps back at the end of a chunk: "\r\n.\r" of a terminator may still be completed. */
const HOLD = 4;
/** Shorter chunks are left to the original (a boundary check would need more care than they are worth). */
const MIN_FAST = 8;

type Done = (err?: Error | null) => void;
type Feed = (this: StreamState, chunk: Buffer, done: Done) => void;

/** The SMTPStream fields the parser reads and writes (private in its types). */
interface StreamState {
  _dataStream: (NodeJS.WritableStream & { writable: boolean; destroyed: boolean }) | null;
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void;
}

/** Wraps the original feed: the returned function does the common case itself and hands every other case to `original`. */
export function fastFeed(original: Feed): Feed {
  return function feed(this: StreamState, chunk: Buffer, done: Done): void {
    const held = this._lastBytes && this._lastBytes.length ? this._lastBytes : undefined;
    if (chunk.length < MIN_FAST || (held && (this._atDataStart || dotAtBoundary(held, chunk)))) return original.call(this, chunk, done);
    const out = this._dataStream!;
    if (held) {
      // no line-starting dot touches the held bytes: they are plain content
      this._lastBytes = false;
      this._countDataBytes(held.length);
      if (out.writable) out.write(held);
    }
    let c = chunk;
    if (this._atDataStart) {
      if (c[0] === DOT && c[1] === CR && c[2] === LF) return this._endDataMode(false, c.subarray(3), done); // an empty message
      if (c[0] === DOT && c[1] === DOT) { c = c.subarray(1); this._atDataStart = false; } // an escaped first dot
    }
    const len = c.length;
    let from = 0;
    // candidates: a dot at position i in [2, len - 3] right after LF, as in the original's loop
    for (let p = c.indexOf(LF_DOT, 0); p !== -1 && p + 1 <= len - 3; p = c.indexOf(LF_DOT, p + 1)) {
      const i = p + 1;
      if (i < 2) continue;
      if (c[i - 2] === CR && c[i + 1] === CR && c[i + 2] === LF) {
        const body = c.subarray(from, i); // the content ends with the CRLF before the dot
        this._countDataBytes(body.length);
        return this._endDataMode(body, c.subarray(i + 3), done);
      }
      if (c[i + 1] === DOT) { // dot-stuffing: drop the first dot
        const part = c.subarray(from, i);
        this._countDataBytes(part.length);
        if (out.writable) out.write(part);
        from = i + 1;
      }
    }
    const rest = c.subarray(from);
    const keep = Math.min(HOLD, rest.length);
    this._lastBytes = rest.subarray(rest.length - keep);
    if (keep === rest.length) return done();
    const part = rest.subarray(0, rest.length - keep);
    this._countDataBytes(part.length);
    if (!out.writable) return done();
    if (out.write(part) || out.destroyed) return done();
    // wait for drain like the original (a stream the application destroys never drains, it closes)
    const resume = () => { out.removeListener('drain', resume); out.removeListener('close', resume); done(); };
    out.once('drain', resume);
    out.once('close', resume);
  };
}

/** Whether a line-starting dot sits where the original checks across the join: positions 2 .. held.length + 1 of held + chunk. */
function dotAtBoundary(held: Buffer, chunk: Buffer): boolean {
  const at = (k: number) => (k < held.length ? held[k] : chunk[k - held.length]);
  for (let i = 2; i <= held.length + 1; i++) if (at(i) === DOT && at(i - 1) === LF) return true;
  return false;
}

const proto = SMTPStream.prototype as unknown as { _feedDataStream: Feed };
/** smtp-server's own parser, for the tests. */
export const originalFeed: Feed = proto._feedDataStream;

/** Installs the fast parser for every smtp-server connection in this process (idempotent). */
export function installFastDataStream(): void {
  if (proto._feedDataStream === originalFeed) proto._feedDataStream = fastFeed(originalFeed);
}
