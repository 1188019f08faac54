// The format of a queue file (see fs-spool.ts for the layout): one header
// line, one envelope JSON line, the message bytes with CRLF line ends, then a
// 16-byte trailer: "shq2", CRC-32 and length of all bytes before it (version 1
// files have no trailer). Reading heads and telling what a file is.
import fs from 'node:fs';
import type fsp from 'node:fs/promises';
import zlib from 'node:zlib';
import type { NewEnvelope } from './spool.js';

const MAGIC = 'smarthost-queue 2\n';
const MAGIC_V1 = 'smarthost-queue 1\n';
/** First line of a file still being received; commit writes MAGIC (same length) over it. */
const MAGIC_PENDING = 'smarthost-queue 0\n';
export const MAGIC_BUF = Buffer.from(MAGIC, 'latin1');
export const PENDING_BUF = Buffer.from(MAGIC_PENDING, 'latin1');
const MAGIC_V1_BUF = Buffer.from(MAGIC_V1, 'latin1');
export const TRAILER = 16;
export const TRAILER_TAG = 'shq2';

/** The trailer of a version 2 file: tag, CRC-32 and length of everything before it. */
export function trailer(crc: number, length: number): Buffer {
  const t = Buffer.alloc(TRAILER);
  t.write(TRAILER_TAG, 0, 'latin1');
  t.writeUInt32BE(crc >>> 0, 4);
  t.writeBigUInt64BE(BigInt(length), 8);
  return t;
}
/** open() reads this much at once: head and body of most messages in one read. */
const HEAD_READ = 64 * 1024;

/**
 * What a file in messages/ is: a message whose head parses and, for version
 * 2, whose trailer matches the length and CRC-32 of every byte before it;
 * unfinished ("smarthost-queue 0": being received, never acknowledged);
 * unused (empty: named ahead, or a message whose first bytes were not yet
 * written; a spare, whose envelope names another id); or corrupt.
 */
export type Examined =
  | { readonly kind: 'message'; readonly envelope: NewEnvelope; readonly size: number }
  | { readonly kind: 'unfinished' | 'unused' | 'corrupt' };

const UNUSED: Examined = { kind: 'unused' };
const CORRUPT: Examined = { kind: 'corrupt' };

/**
 * Parses a stored file's head; returns envelope (without size), the body offset
 * and the length of the trailer after the body (0 for a version 1 file).
 */
export function parseHead(head: Buffer): { envelope: NewEnvelope; offset: number; trailer: number } | undefined {
  if (!startsWithMagic(head)) return undefined;
  const end = head.indexOf(0x0a, MAGIC.length);
  if (end < 0) return undefined;
  try {
    const envelope = JSON.parse(head.subarray(MAGIC.length, end).toString('utf8')) as NewEnvelope;
    if (!envelope || typeof envelope.id !== 'string' || !Array.isArray(envelope.recipients)) return undefined;
    return { envelope, offset: end + 1, trailer: head.subarray(0, MAGIC_BUF.length).equals(MAGIC_BUF) ? TRAILER : 0 };
  } catch {
    return undefined;
  }
}

/** Whether `read` starts with the first line of a version this code reads. */
function startsWithMagic(read: Buffer): boolean {
  const first = read.subarray(0, MAGIC_BUF.length);
  return first.equals(MAGIC_BUF) || first.equals(MAGIC_V1_BUF);
}

/** Where the body of a stored file of `fileSize` bytes runs, from the start of it in `read`: `offset` to `end`, before the trailer (`end` < `offset` in a file cut short). */
export function bodyRange(read: Buffer, fileSize: number): { envelope: NewEnvelope; offset: number; end: number } | undefined {
  const parsed = parseHead(read);
  return parsed && { envelope: parsed.envelope, offset: parsed.offset, end: fileSize - parsed.trailer };
}

/**
 * Reads the head of a stored file of `fileSize` bytes: 64 KiB at first, more
 * for a very long recipient list. `read` is what was read from offset 0 (head
 * and the start of the body); the body runs from `offset` to `end`, before the
 * trailer (`end` < `offset` in a file cut short). Undefined: no head (also
 * for a message still being received: first line "smarthost-queue 0").
 */
export async function headFrom(fh: fsp.FileHandle, fileSize: number): Promise<{ envelope: NewEnvelope; offset: number; end: number; read: Buffer } | undefined> {
  for (let size = HEAD_READ; ; size *= 4) {
    const buf = Buffer.allocUnsafe(Math.min(size, fileSize));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const read = buf.subarray(0, bytesRead);
    const range = bodyRange(read, fileSize);
    if (range) return { ...range, read };
    // the whole file was read, or its first line is no version we read: no longer head to look for
    if (bytesRead < size || !startsWithMagic(read)) return undefined;
  }
}

/**
 * Files up to this size are read in one synchronous call: most were just written and sit in the
 * page cache. (One recovered at start, or retried hours later, may come from the disk and hold
 * the event loop for that read; a pool round trip per message cost more under load.)
 */
export const SMALL_READ = 256 * 1024;

/** The whole file when it is small, else undefined (also when it is missing: the async path reports that). */
export function readSmall(file: string): Buffer | undefined {
  try {
    // a stat first, so a large file is opened only once (by the streaming path)
    return fs.statSync(file).size > SMALL_READ ? undefined : fs.readFileSync(file);
  } catch { return undefined; }
}

/** What a whole file (`all`, read at once) named `id` is; see Examined. */
export function examineBuffer(all: Buffer, id: string): Examined {
  if (all.length === 0) return UNUSED;
  const range = bodyRange(all, all.length);
  if (!range) return all.subarray(0, PENDING_BUF.length).equals(PENDING_BUF) ? { kind: 'unfinished' } : CORRUPT;
  if (range.envelope.id !== id) return UNUSED;
  if (range.end < range.offset) return CORRUPT;
  const message: Examined = { kind: 'message', envelope: range.envelope, size: range.end - range.offset };
  if (range.end === all.length) return message; // version 1: no trailer
  const end = all.subarray(range.end);
  if (end.toString('latin1', 0, 4) !== TRAILER_TAG || end.readBigUInt64BE(8) !== BigInt(range.end)) return CORRUPT;
  return zlib.crc32(all.subarray(0, range.end)) === end.readUInt32BE(4) ? message : CORRUPT;
}

/** examineBuffer() for a file too large to read at once: read in chunks of 1 MiB. */
export async function examineHandle(fh: fsp.FileHandle, id: string): Promise<Examined> {
  const st = await fh.stat();
  if (st.size === 0) return UNUSED;
  const head = await headFrom(fh, st.size);
  if (!head) {
    const first = Buffer.alloc(PENDING_BUF.length);
    await fh.read(first, 0, first.length, 0);
    return first.equals(PENDING_BUF) ? { kind: 'unfinished' } : CORRUPT;
  }
  if (head.envelope.id !== id) return UNUSED;
  if (head.end < head.offset) return CORRUPT;
  const message: Examined = { kind: 'message', envelope: head.envelope, size: head.end - head.offset };
  if (head.end === st.size) return message; // version 1: no trailer
  const length = head.end;
  const end = Buffer.alloc(TRAILER);
  await fh.read(end, 0, TRAILER, length);
  if (end.toString('latin1', 0, 4) !== TRAILER_TAG || end.readBigUInt64BE(8) !== BigInt(length)) return CORRUPT;
  const buf = Buffer.allocUnsafe(Math.min(length, 1024 * 1024));
  let crc = 0;
  for (let pos = 0; pos < length;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (!bytesRead) return CORRUPT;
    crc = zlib.crc32(buf.subarray(0, bytesRead), crc);
    pos += bytesRead;
  }
  return crc === end.readUInt32BE(4) ? message : CORRUPT;
}
