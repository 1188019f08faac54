// The spool on the local file system.
//
//   queue/messages/ID   a message: one header line, one envelope JSON line,
//                       the message bytes with CRLF line ends, then a 16-byte
//                       trailer: "shq2", CRC-32 and length of all bytes before
//                       it (version 1 files have no trailer). Not a message
//                       (yet): an empty file, one whose first line is
//                       "smarthost-queue 0" (being received), or one whose
//                       envelope names another id (a spare, see below)
//   queue/tmp/ID.PID    message being received by `smarthost sendmail` PID
//   queue/state/ID.json delivery state per recipient (absent: all queued)
//   queue/corrupt/      files that failed to parse at recovery, kept for a human
//
// Commit (the daemon): the message is written into a file that already has
// its final name in messages/, a name made durable by an fsync of messages/
// before the file was handed out ("Files named ahead" below). The first line
// says "smarthost-queue 0" until everything else is written; then commit
// writes "smarthost-queue 2" over it, fdatasyncs the file, and 250. One wait
// for the disk, no directory change: a crash before the fdatasync leaves a
// file that recovery discards (first line "0", or a trailer that does not
// match: corrupt/), after it the whole message.
// A file the daemon had to create at the moment (none named ahead was ready)
// also waits for an fsync of messages/, shared by concurrent sessions (see
// dir-sync.ts), at the same time as its fdatasync.
//
// Commit (`smarthost sendmail`, another process that must not put unfinished
// files where a starting daemon's recovery would discard them): write into
// tmp/ID.PID -> link into messages/ -> fdatasync(file) and fsync(messages/)
// at the same time -> unlink the tmp name. link() rather than rename()
// because it fails if the id already exists, so two writers can never
// overwrite each other.
//
// Files named ahead (the daemon only, `recycle`): once fewer than 32 of 64 are
// left, refill() creates the rest as empty files in messages/ on the thread
// pool, then fsyncs messages/ once for all of them; receive() takes one. Creating a file is slow when many
// inodes were freed in the last 30 s (ext4 without a journal scans past them:
// recently_deleted()), and inline it stalls every session.
//
// Spare files (the daemon only): a delivered message's file is linked to a new
// id and its old name removed, and the next message is written over it in
// place, saving the inode allocation. It is handed out only after an fsync of
// messages/ that started after the link and unlink, so a crash can never bring
// back the old name pointing at a new message's bytes (and lose the new name). Until then its envelope names
// the old id: not a message under the new one.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Envelope } from '../mail/envelope.js';
import { isQueueId, newQueueId } from '../mail/queue-id.js';
import { mapBounded, retryTransient } from './bounded.js';
import { DirSync } from './dir-sync.js';
import {
  initialState, SpoolFullError,
  type DeliveryState, type Incoming, type NewEnvelope, type QueueEntry, type RecoveryReport, type Spool,
} from './spool.js';

/** What a pass over messages/ found: the messages read, and the files that could not be read (after retries) with their errors. */
export interface QueueListing {
  readonly entries: QueueEntry[];
  readonly unreadable: Array<{ readonly id: string; readonly error: Error }>;
}

const MAGIC = 'smarthost-queue 2\n';
const MAGIC_V1 = 'smarthost-queue 1\n';
/** First line of a file still being received; commit writes MAGIC (same length) over it. */
const MAGIC_PENDING = 'smarthost-queue 0\n';
const MAGIC_BUF = Buffer.from(MAGIC, 'latin1');
const PENDING_BUF = Buffer.from(MAGIC_PENDING, 'latin1');
const MAGIC_V1_BUF = Buffer.from(MAGIC_V1, 'latin1');
const TRAILER = 16;
const TRAILER_TAG = 'shq2';

/** The trailer of a version 2 file: tag, CRC-32 and length of everything before it. */
function trailer(crc: number, length: number): Buffer {
  const t = Buffer.alloc(TRAILER);
  t.write(TRAILER_TAG, 0, 'latin1');
  t.writeUInt32BE(crc >>> 0, 4);
  t.writeBigUInt64BE(BigInt(length), 8);
  return t;
}
/** Small messages are written in one go at commit; larger ones in chunks of this size. */
const FLUSH_AT = 256 * 1024;
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);
/** At most this many spare files, each of a message no bigger than SPARE_SIZE: at most 16 MiB of them. */
const SPARES = 64;
const SPARE_SIZE = 256 * 1024;
/** Empty files named ahead for receive(): refill() tops them up to FRESH once fewer than half are left, FRESH_CREATES creates at once. */
const FRESH = 64;
const FRESH_CREATES = 4;
/** open() reads this much at once: head and body of most messages in one read. */
const HEAD_READ = 64 * 1024;

/** An empty file named ahead, kept open. */
interface Fresh { readonly id: string; readonly fd: number; readonly file: string }
const openFile = promisify(fs.open);

/** What recovery finds in messages/ (see examine()). */
type Examined = 'message' | 'unfinished' | 'unused' | 'corrupt';

function storageError(e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  return err && FULL_CODES.has(err.code ?? '') ? new SpoolFullError(err.message, { cause: e }) : (e as Error);
}

function pidAlive(pid: number): boolean {
  if (pid <= 0 || pid === process.pid) return false; // ours from an earlier life of this pid? we only recover at start
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

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
function bodyRange(read: Buffer, fileSize: number): { envelope: NewEnvelope; offset: number; end: number } | undefined {
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
async function headFrom(fh: fsp.FileHandle, fileSize: number): Promise<{ envelope: NewEnvelope; offset: number; end: number; read: Buffer } | undefined> {
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
const SMALL_READ = 256 * 1024;

/** The whole file when it is small, else undefined (also when it is missing: the async path reports that). */
function readSmall(file: string): Buffer | undefined {
  try {
    // a stat first, so a large file is opened only once (by the streaming path)
    return fs.statSync(file).size > SMALL_READ ? undefined : fs.readFileSync(file);
  } catch { return undefined; }
}

/** Where an incoming message's file is: its final name, whether that name is durable yet, and (sendmail) the tmp/ name it is written under. */
interface Place {
  readonly fd: number;
  /** messages/ID */
  readonly file: string;
  /** The name is in messages/ and fsynced there: commit need not fsync the directory. */
  readonly named: boolean;
  /** `smarthost sendmail`: written under this name in tmp/, linked to `file` at commit. */
  readonly tmpPath?: string;
  /** Size of the spare file written over, cut to this message's length at commit. */
  readonly oldSize?: number;
}

class FsIncoming implements Incoming {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private bodyBytes = 0;
  /** CRC-32 of everything written so far (with the final first line), for the trailer */
  private crc: number;
  private done = false;
  /** On disk and answered for: abort() must not touch it any more */
  private committed = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    private readonly place: Place,
    /** The envelope line (after the first line) */
    envelopeLine: Buffer,
    private readonly envelope: NewEnvelope,
    private readonly dirSync: DirSync,
  ) {
    this.pending.push(PENDING_BUF, envelopeLine);
    this.pendingBytes = PENDING_BUF.length + envelopeLine.length;
    this.crc = zlib.crc32(envelopeLine, zlib.crc32(MAGIC_BUF));
  }

  write(chunk: Buffer): Promise<void> {
    if (this.done) return Promise.reject(new Error('write after commit/abort'));
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.bodyBytes += chunk.length;
    this.crc = zlib.crc32(chunk, this.crc);
    if (this.pendingBytes < FLUSH_AT) return this.chain;
    return this.flush();
  }

  private flush(): Promise<void> {
    const bufs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.chain = this.chain.then(() => {
      if (!bufs.length) return;
      // into the page cache: microseconds, so done inline rather than as a thread-pool round trip
      const bytesWritten = fs.writevSync(this.place.fd, bufs, this.written);
      const total = bufs.reduce((n, b) => n + b.length, 0);
      if (bytesWritten !== total) throw new SpoolFullError(`short write (${bytesWritten} of ${total} bytes)`);
      this.written += bytesWritten;
    });
    return this.chain;
  }

  async commit(): Promise<Envelope> {
    if (this.done) throw new Error('commit after commit/abort');
    const { fd, file, named, tmpPath, oldSize = 0 } = this.place;
    let linked = false;
    try {
      this.pending.push(trailer(this.crc, this.written + this.pendingBytes));
      await this.flush();
      if (oldSize > this.written) fs.ftruncateSync(fd, this.written);
      // all of it is written: only now does the file say it is a message
      if (fs.writeSync(fd, MAGIC_BUF, 0, MAGIC_BUF.length, 0) !== MAGIC_BUF.length) throw new SpoolFullError('short write of the first line');
      // Only the waits for the disk go to the thread pool; link and close are metadata
      // calls of microseconds, done inline (each pool round trip queues behind other fsyncs).
      if (tmpPath !== undefined) { fs.linkSync(tmpPath, file); linked = true; }
      const synced = await Promise.allSettled([
        new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
        named ? undefined : this.dirSync.sync(),
      ]);
      const failed = synced.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      this.done = this.committed = true;
      fs.closeSync(fd);
    } catch (e) {
      // the client will hear 452 and retry: nothing of this attempt may stay queued
      // (abort() removes the file under the name it was written under)
      if (linked) await fsp.unlink(file).catch(() => undefined);
      await this.abort();
      throw storageError(e);
    }
    // the tmp name is only a second link to the committed file: the 250 need not wait for it
    // (a leftover is discarded at recovery, the message itself stays)
    if (tmpPath !== undefined) { try { fs.unlinkSync(tmpPath); } catch { /* a leftover is discarded at recovery */ } }
    return { ...this.envelope, size: this.bodyBytes };
  }

  async abort(): Promise<void> {
    if (this.committed) return;
    const wasDone = this.done;
    this.done = true;
    this.pending = [];
    await this.chain.catch(() => undefined);
    if (!wasDone) { try { fs.closeSync(this.place.fd); } catch { /* already closed */ } }
    try { fs.unlinkSync(this.place.tmpPath ?? this.place.file); } catch { /* never created, or gone */ }
  }
}

export class FsSpool implements Spool {
  readonly root: string;
  private readonly tmp: string;
  private readonly messages: string;
  private readonly state: string;
  private readonly corrupt: string;
  readonly dirSync: DirSync;
  private readonly stateSync: DirSync;

  /** Spare files ready to be written over, and those waiting for the fsync that frees them. */
  private readonly spares: string[] = [];
  private readonly sparesPending = new Set<string>();
  /** Empty files named ahead and kept open, used when no spare is ready. */
  private readonly fresh: Fresh[] = [];
  /** Set while refill() runs; resolves once its batch is handed out (or removed, after close()). */
  private refilling: Promise<void> | undefined;
  /** Until when a failed create (disk full) pauses refills. */
  private createPausedUntil = 0;
  private closed = false;

  /**
   * `owner`: hand new queue files to this account (root's `smarthost sendmail`
   * writing for a daemon that runs as its own user, like Postfix's postdrop group).
   * `onUnreadable`: told about a queue file list() could not read (after retries of
   * transient errors such as EMFILE), with its error; it is left in place for a
   * human instead of stopping the whole queue.
   */
  constructor(dataDir: string, private readonly opts: {
    readonly owner?: { readonly uid: number; readonly gid: number };
    readonly onUnreadable?: (id: string, error: Error) => void;
    /** Keep delivered messages' files for reuse (the daemon; see "Spare files" above). */
    readonly recycle?: boolean;
  } = {}) {
    this.root = path.join(dataDir, 'queue');
    this.tmp = path.join(this.root, 'tmp');
    this.messages = path.join(this.root, 'messages');
    this.state = path.join(this.root, 'state');
    this.corrupt = path.join(this.root, 'corrupt');
    this.dirSync = new DirSync(this.messages);
    this.stateSync = new DirSync(this.state);
  }

  /** Creates the directories, nothing else: for `smarthost sendmail`, which must not recover a running daemon's spool. */
  prepare(): void { this.ensureLayout(); }

  private ensureLayout(): void {
    for (const d of [this.tmp, this.messages, this.state, this.corrupt]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  async recover(): Promise<RecoveryReport> {
    this.ensureLayout();
    let discarded = 0;
    let corrupt = 0;
    for (const name of await fsp.readdir(this.tmp)) {
      const pid = Number(name.split('.').pop());
      if (Number.isInteger(pid) && pidAlive(pid)) continue; // a running `smarthost sendmail`
      await fsp.unlink(path.join(this.tmp, name)).catch(() => undefined);
      discarded++;
    }
    const ids = new Set<string>();
    // a bounded number of files open at once, whatever the size of the queue (bounded.ts)
    await mapBounded(await fsp.readdir(this.messages), async (name) => {
      const file = path.join(this.messages, name);
      let found: Examined;
      try { found = isQueueId(name) ? await retryTransient(() => this.examine(file, name)) : 'corrupt'; } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        ids.add(name); // keep its state: the file may be fine, only not readable now (list() reports it)
        return;
      }
      if (found === 'message') ids.add(name);
      else if (found !== 'corrupt') {
        await fsp.unlink(file).catch(() => undefined);
        if (found === 'unfinished') discarded++;
      } else { await fsp.rename(file, path.join(this.corrupt, name)).catch(() => undefined); corrupt++; }
    });
    for (const name of await fsp.readdir(this.state)) {
      if (!ids.has(name.replace(/\.json$/, ''))) await fsp.unlink(path.join(this.state, name)).catch(() => undefined);
    }
    await new DirSync(this.tmp).sync().catch(() => undefined);
    this.refill();
    return { messages: ids.size, discarded, corrupt };
  }

  async receive(envelope: Omit<NewEnvelope, 'id'>): Promise<Incoming> {
    if (this.opts.recycle) {
      const ready = this.takeReady();
      this.refill();
      if (ready) return this.incoming(ready.id, { ...ready, named: true }, envelope);
    }
    // none named ahead (or `smarthost sendmail`): create one now; commit also fsyncs messages/ for it
    for (let attempt = 0; ; attempt++) {
      const id = newQueueId();
      const file = path.join(this.messages, id);
      const tmpPath = this.opts.recycle ? undefined : this.tmpName(id);
      let fd: number;
      try {
        fd = fs.openSync(tmpPath ?? file, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 5) continue;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.ensureLayout();
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 1) continue;
        throw storageError(e);
      }
      if (this.opts.owner) {
        try { fs.fchownSync(fd, this.opts.owner.uid, this.opts.owner.gid); } catch (e) {
          fs.closeSync(fd); try { fs.unlinkSync(tmpPath ?? file); } catch { /* gone */ }
          throw storageError(e);
        }
      }
      return this.incoming(id, { fd, file, named: false, ...(tmpPath ? { tmpPath } : {}) }, envelope);
    }
  }

  /** A name in tmp/ of this process: recovery knows its files by the pid. */
  private tmpName(id: string): string {
    return path.join(this.tmp, `${id}.${process.pid}`);
  }

  private incoming(id: string, place: Place, envelope: Omit<NewEnvelope, 'id'>): Incoming {
    const full: NewEnvelope = { ...envelope, id };
    return new FsIncoming(id, place, Buffer.from(JSON.stringify(full) + '\n', 'utf8'), full, this.dirSync);
  }

  /**
   * A spare file opened for writing over, else an empty file named ahead, if
   * there is one. A spare is not emptied (O_TRUNC): freeing its blocks and
   * allocating new ones costs more than writing into them in place; commit cuts
   * off what is left of the old message.
   */
  private takeReady(): { id: string; fd: number; file: string; oldSize: number } | undefined {
    for (let p = this.spares.pop(); p !== undefined; p = this.spares.pop()) {
      let fd: number | undefined;
      try {
        fd = fs.openSync(p, fs.constants.O_WRONLY);
        return { id: path.basename(p), fd, file: p, oldSize: fs.fstatSync(fd).size };
      } catch {
        if (fd !== undefined) fs.closeSync(fd);
        try { fs.unlinkSync(p); } catch { /* gone */ } // not ours to write (a root-owned file deleted by `queue delete`)
      }
    }
    const fresh = this.fresh.shift(); // the oldest named first, so ids stay roughly in arrival order
    return fresh && { ...fresh, oldSize: 0 };
  }

  /**
   * Once fewer than half of FRESH files named ahead are left, creates the
   * rest on the thread pool, FRESH_CREATES at a time, then fsyncs messages/
   * once for all of them, and only then hands them out. Inline, a create
   * stalls every session when it is slow (see "Files named ahead" above); one
   * directory fsync per batch instead of one shared by each few commits. A
   * failed create (disk full) pauses this for a second.
   */
  private refill(): void {
    if (!this.opts.recycle || this.closed || this.refilling || this.fresh.length >= FRESH / 2 || Date.now() < this.createPausedUntil) return;
    this.refilling = this.nameAhead(FRESH - this.fresh.length).finally(() => { this.refilling = undefined; });
  }

  /** refill()'s batch: `count` empty files created FRESH_CREATES at a time, one fsync of messages/, then handed out. */
  private async nameAhead(count: number): Promise<void> {
    const batch: Fresh[] = [];
    const pause = () => { this.createPausedUntil = Date.now() + 1000; count = 0; };
    const creator = async () => {
      while (count > 0 && !this.closed) {
        count--;
        const id = newQueueId();
        const file = path.join(this.messages, id);
        try { batch.push({ id, file, fd: await openFile(file, 'wx', 0o600) }); } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') pause(); // (an id taken by sendmail: the next one)
        }
      }
    };
    await Promise.all(Array.from({ length: FRESH_CREATES }, creator));
    let synced = false;
    if (batch.length && !this.closed) synced = await this.dirSync.sync().then(() => true, () => { pause(); return false; });
    if (synced && !this.closed) this.fresh.push(...batch); else this.discard(batch);
  }

  /** Closes and removes files named ahead that will not be handed out. */
  private discard(files: Array<{ fd: number; file: string }>): void {
    for (const { fd, file } of files) { try { fs.closeSync(fd); } catch { /* closed */ } try { fs.unlinkSync(file); } catch { /* gone */ } }
  }

  /** The envelope and body offset of a stored file; a transient error (out of descriptors) is retried. */
  private readHead(file: string): Promise<{ envelope: Envelope; offset: number } | undefined> {
    return retryTransient(() => this.readHeadOnce(file));
  }

  private async readHeadOnce(file: string): Promise<{ envelope: Envelope; offset: number } | undefined> {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(file, 'r');
      const st = await fh.stat();
      const head = await headFrom(fh, st.size);
      return head && { envelope: { ...head.envelope, size: Math.max(0, head.end - head.offset) }, offset: head.offset };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    } finally {
      await fh?.close();
    }
  }

  /**
   * What a file in messages/ is: a message whose head parses and, for version
   * 2, whose trailer matches the length and CRC-32 of every byte before it;
   * unfinished ("smarthost-queue 0": being received, never acknowledged);
   * unused (empty: named ahead, or a message whose first bytes were not yet
   * written; a spare, whose envelope names another id); or corrupt. Reads the
   * whole file: used at recovery only.
   */
  private async examine(file: string, id: string): Promise<Examined> {
    const fh = await fsp.open(file, 'r');
    try {
      const st = await fh.stat();
      if (st.size === 0) return 'unused';
      const head = await headFrom(fh, st.size);
      if (!head) {
        const first = Buffer.alloc(PENDING_BUF.length);
        await fh.read(first, 0, first.length, 0);
        return first.equals(PENDING_BUF) ? 'unfinished' : 'corrupt';
      }
      if (head.envelope.id !== id) return 'unused';
      if (head.end < head.offset) return 'corrupt';
      if (head.end === st.size) return 'message'; // version 1: no trailer
      const length = head.end;
      const end = Buffer.alloc(TRAILER);
      await fh.read(end, 0, TRAILER, length);
      if (end.toString('latin1', 0, 4) !== TRAILER_TAG || end.readBigUInt64BE(8) !== BigInt(length)) return 'corrupt';
      const buf = Buffer.allocUnsafe(Math.min(length, 1024 * 1024));
      let crc = 0;
      for (let pos = 0; pos < length;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
        if (!bytesRead) return 'corrupt';
        crc = zlib.crc32(buf.subarray(0, bytesRead), crc);
        pos += bytesRead;
      }
      return crc === end.readUInt32BE(4) ? 'message' : 'corrupt';
    } finally {
      await fh.close();
    }
  }

  /**
   * The saved delivery state; none saved (or not JSON): every recipient queued. Any other error is
   * thrown (after retries, if transient): starting over from "queued" would deliver again to
   * recipients already done, and forget a hold.
   */
  private async readState(id: string, envelope: Envelope): Promise<DeliveryState> {
    let text: string;
    try {
      text = await retryTransient(() => fsp.readFile(path.join(this.state, `${id}.json`), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return initialState(envelope);
      throw e;
    }
    try { return JSON.parse(text) as DeliveryState; } catch { return initialState(envelope); }
  }

  async get(id: string): Promise<QueueEntry | undefined> {
    if (!isQueueId(id)) return undefined;
    const head = await this.readHead(path.join(this.messages, id));
    // another id: the daemon made the file a spare and wrote the next message over it while we read
    if (!head || head.envelope.id !== id) return undefined;
    return { envelope: head.envelope, state: await this.readState(id, head.envelope) };
  }

  async unclaimed(known: (id: string) => boolean, before: number): Promise<string[]> {
    let names: string[];
    try { names = await fsp.readdir(this.messages); } catch { return []; }
    const candidates = names.filter((n) => isQueueId(n) && !known(n)).sort();
    const settled = await mapBounded(candidates, (id) => this.settledMessage(path.join(this.messages, id), id, before));
    return candidates.filter((_, i) => settled[i]);
  }

  /**
   * Whether a file is a message (not empty, nor being received, nor a spare: see examine()) last
   * written before `before`. The age is taken after the head was read: a spare keeps the old
   * message's time until it is written over, and what was read is then no older than that time.
   * Not readable even after retries: not now (the next rescan looks again).
   */
  private async settledMessage(file: string, id: string, before: number): Promise<boolean> {
    return retryTransient(async () => {
      let fh: fsp.FileHandle | undefined;
      try {
        fh = await fsp.open(file, 'r');
        const size = (await fh.stat()).size;
        const head = size > 0 ? await headFrom(fh, size) : undefined;
        return head?.envelope.id === id && (await fh.stat()).mtimeMs < before;
      } finally { await fh?.close(); }
    }).catch(() => false);
  }

  /** The messages in the spool, oldest id first; a file that cannot be read is told to `onUnreadable` and left out. */
  async list(): Promise<QueueEntry[]> {
    const { entries, unreadable } = await this.listAll();
    for (const { id, error } of unreadable) this.opts.onUnreadable?.(id, error);
    return entries;
  }

  /**
   * Every message in the spool, oldest id first, and every file in messages/ that could not be
   * read (after retries of transient errors), with its error: nothing is left out silently.
   * At most OPEN_AT_ONCE files are open at a time.
   */
  async listAll(): Promise<QueueListing> {
    let names: string[];
    try { names = await fsp.readdir(this.messages); } catch { return { entries: [], unreadable: [] }; }
    const unreadable: Array<{ id: string; error: Error }> = [];
    const entries = await mapBounded(names.filter(isQueueId).sort(), (id) => this.get(id).catch((error: Error) => {
      unreadable.push({ id, error });
      return undefined;
    }));
    unreadable.sort((a, b) => (a.id < b.id ? -1 : 1));
    return { entries: entries.filter((e): e is QueueEntry => e !== undefined), unreadable };
  }

  open(id: string): Readable {
    const file = path.join(this.messages, id);
    const small = readSmall(file);
    if (small) {
      const range = bodyRange(small, small.length);
      if (!range || range.end < range.offset) return Readable.from((async function* () { throw new Error(`message ${id} has an unreadable head`); })());
      return Readable.from([small.subarray(range.offset, range.end)], { objectMode: false });
    }
    return Readable.from((async function* () {
      // one open for head and body; most messages fit in the first read
      let fh: fsp.FileHandle;
      try { fh = await fsp.open(file, 'r'); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`no message ${id} in the queue`);
        throw e;
      }
      try {
        const head = await headFrom(fh, (await fh.stat()).size);
        if (!head || head.end < head.offset) throw new Error(`message ${id} has an unreadable head`);
        const { read, offset, end } = head;
        if (Math.min(read.length, end) > offset) yield read.subarray(offset, end);
        if (read.length < end) yield* fh.createReadStream({ start: read.length, end: end - 1, autoClose: false });
      } finally {
        await fh.close();
      }
    })());
  }

  async saveState(id: string, state: DeliveryState): Promise<void> {
    const file = path.join(this.state, `${id}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    await this.stateSync.sync();
  }

  /**
   * Removes a message and its state. The directory is not fsynced: should the
   * system crash right after, the message comes back and is delivered again
   * (at least once), which is cheaper than an fsync per delivered message.
   */
  async remove(id: string, opts: { hasState?: boolean; size?: number } = {}): Promise<boolean> {
    if (!isQueueId(id)) return false;
    const file = path.join(this.messages, id);
    const spare = this.opts.recycle && !this.closed && opts.size !== undefined && opts.size <= SPARE_SIZE
      && this.spares.length + this.sparesPending.size < SPARES ? path.join(this.messages, newQueueId()) : undefined;
    try {
      // Link and unlink of a name take microseconds: inline, as a pool round trip costs more.
      // Removing the last name frees the file's blocks, which takes long enough to stall the
      // loop: on the pool. link() rather than rename(): it never replaces a message.
      if (spare && this.linkSpare(file, spare)) fs.unlinkSync(file); else await fsp.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    if (spare && this.sparesPending.has(spare)) {
      this.dirSync.sync().then(
        () => { if (this.sparesPending.delete(spare)) this.spares.push(spare); },
        () => { if (this.sparesPending.delete(spare)) { try { fs.unlinkSync(spare); } catch { /* gone */ } } },
      );
    }
    if (opts.hasState !== false) await fsp.unlink(path.join(this.state, `${id}.json`)).catch(() => undefined);
    return true;
  }

  /** Gives the file of a delivered message a new id, as a spare waiting for the fsync of messages/; false if that fails (and it is simply removed). */
  private linkSpare(file: string, spare: string): boolean {
    try { fs.linkSync(file, spare); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
      return false;
    }
    this.sparesPending.add(spare);
    return true;
  }

  /** Removes the files kept for new mail; resolves once a batch still being named ahead is removed too. */
  close(): Promise<void> {
    this.closed = true;
    this.discard(this.fresh.splice(0));
    for (const p of [...this.spares.splice(0), ...this.sparesPending]) { try { fs.unlinkSync(p); } catch { /* gone */ } }
    this.sparesPending.clear();
    this.dirSync.close();
    this.stateSync.close();
    return this.refilling ?? Promise.resolve();
  }
}
