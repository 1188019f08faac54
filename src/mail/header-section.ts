// The header section of a spooled message (CRLF line ends, RFC 5322 §2.1): the
// one reader used by bounces, local delivery, sender rewriting, DKIM and the
// queue views. Input from local programs, which may use bare LF and has no
// blank line yet, is parsed leniently by cleanup/local-submission.ts instead;
// cleanup/header-scan.ts reads facts as bytes stream past during intake.
import type { Readable } from 'node:stream';

const HEAD_END = Buffer.from('\r\n\r\n');
/** A header section longer than this is left alone (not rewritten, not signed) rather than buffered. */
const HEAD_LIMIT = 1024 * 1024;

/**
 * Splits at the empty line: `head` up to and including the CRLF before it, `body` after it.
 * A message starting with an empty line has no header; one without an empty line is all header.
 */
export function splitMessage(message: Buffer): { head: Buffer; body: Buffer } {
  if (message[0] === 0x0d && message[1] === 0x0a) return { head: message.subarray(0, 0), body: message.subarray(2) };
  const end = message.indexOf(HEAD_END);
  if (end < 0) return { head: message, body: message.subarray(message.length) };
  return { head: message.subarray(0, end + 2), body: message.subarray(end + 4) };
}

/** One header field as it stands: its name (lower case) and its text without the final CRLF. */
export interface HeaderField { readonly name: string; readonly raw: string }

/** The fields of a header section (latin1 text, CRLF line ends), continuation lines kept. */
export function headerFields(head: string): HeaderField[] {
  const out: Array<{ name: string; raw: string }> = [];
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1]!.raw += `\r\n${line}`;
    else if (line.includes(':')) out.push({ name: line.slice(0, line.indexOf(':')).replace(/[ \t]+$/, '').toLowerCase(), raw: line });
  }
  return out;
}

/** A stream chunk as bytes (a stream in string mode gives strings). */
export function toBuffer(chunk: unknown): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
}

/**
 * The header section of a stream up to and including the first CRLFCRLF, or undefined when there
 * is none within HEAD_LIMIT bytes (the message is then left alone, not buffered). Destroys the stream.
 */
export async function readHead(body: Readable): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  let tail: Buffer = Buffer.alloc(0);   // the last 3 bytes before this chunk, where a CRLFCRLF split across chunks begins
  try {
    for await (const raw of body) {
      const chunk = toBuffer(raw);
      // a match that starts in the tail can only end in the chunk's first bytes: search those few
      // bytes joined, then the chunk itself, without copying the chunk
      const seam = tail.length ? Buffer.concat([tail, chunk.subarray(0, HEAD_END.length - 1)]).indexOf(HEAD_END) : -1;
      const at = seam >= 0 ? seam - tail.length : chunk.indexOf(HEAD_END);
      chunks.push(chunk);
      if (seam >= 0 || at >= 0) {
        const end = length + at + HEAD_END.length;
        return end <= HEAD_LIMIT ? Buffer.concat(chunks).subarray(0, end) : undefined;
      }
      length += chunk.length;
      if (length >= HEAD_LIMIT) return undefined;
      const keep = HEAD_END.length - 1;
      tail = chunk.length >= keep ? chunk.subarray(chunk.length - keep) : Buffer.concat([tail, chunk]).subarray(-keep);
    }
    return undefined;
  } finally {
    body.destroy();   // leaving for-await early destroys it too; this also covers a stream that ended
  }
}
