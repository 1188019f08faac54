// A faster _transform for nodemailer's DataStream (smtp-connection/data-stream.js),
// which looks at every byte in JavaScript (its cost: bench/NOTES.md). The spool holds CRLF-only bytes (cleanup/line-ends.ts,
// bounce/dsn.ts), so a chunk only needs a dot doubled after each CRLF; that is
// found with Buffer.indexOf. Any chunk that is not CRLF-clean, or that ends in
// CR, goes to nodemailer's own code, which also repairs bare CR and LF. Both
// keep the same counters, so they can alternate chunk by chunk.

type Done = (err?: Error | null) => void;
export type TransformFn = (chunk: Buffer | string, encoding: BufferEncoding, done: Done) => void;

/** The DataStream fields both versions read and write. */
export interface DataStreamState {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
  push(chunk: Buffer): boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');

/** True when every CR in `chunk` is followed by LF and every LF follows a CR (`prev`: the byte before the chunk). */
function crlfClean(chunk: Buffer, prev: number | false): boolean {
  if (chunk[chunk.length - 1] === CR || prev === CR) return false;
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) if (chunk[i + 1] !== LF) return false;
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) if (i === 0 || chunk[i - 1] !== CR) return false;
  return true;
}

export function fastDotStuffing(original: TransformFn): TransformFn {
  return function transform(this: DataStreamState, chunk, encoding, done) {
    if (!Buffer.isBuffer(chunk) || !chunk.length || !crlfClean(chunk, this.lastByte)) return original.call(this, chunk, encoding, done);
    const parts: Buffer[] = [];
    let from = 0;
    if (chunk[0] === 0x2e && (this.lastByte === LF || this.lastByte === false)) parts.push(DOT); // a dot opening the first line
    for (let i = chunk.indexOf(LF_DOT); i !== -1; i = chunk.indexOf(LF_DOT, i + 1)) {
      parts.push(chunk.subarray(from, i + 1), DOT);
      from = i + 1;
    }
    const out = parts.length ? Buffer.concat([...parts, chunk.subarray(from)]) : chunk;
    this.inByteCount += chunk.length;
    this.outByteCount += out.length;
    this.lastByte = chunk[chunk.length - 1]!;
    this.push(out);
    done();
  };
}
