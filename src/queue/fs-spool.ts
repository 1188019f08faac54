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
// The file format: fs-format.ts; receiving and commit: fs-incoming.ts;
// recovery at start: fs-recovery.ts.
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
import type { Envelope } from '../mail/envelope.js';
import { isQueueId, newQueueId } from '../mail/queue-id.js';
import { mapBounded, retryTransient } from './bounded.js';
import { DirSync } from './dir-sync.js';
import { bodyRange, headFrom, readSmall } from './fs-format.js';
import { FsIncoming, storageError, type Place } from './fs-incoming.js';
import { scanMessages, unclaimedIds } from './fs-listing.js';
import { recoverFiles } from './fs-recovery.js';
import {
  initialState,
  type DeliveryState, type Incoming, type NewEnvelope, type QueueEntry, type QueueListing, type Recovered, type RecoveryReport, type Scanned, type Spool,
} from './spool.js';

/** At most this many spare files, each of a message no bigger than SPARE_SIZE: at most 16 MiB of them. */
const SPARES = 64;
const SPARE_SIZE = 256 * 1024;
/** Empty files named ahead for receive(): refill() tops them up to FRESH once fewer than half are left, FRESH_CREATES creates at once. */
const FRESH = 64;
const FRESH_CREATES = 4;

/** An empty file named ahead, kept open. */
interface Fresh { readonly id: string; readonly fd: number; readonly file: string }
const openFile = promisify(fs.open);

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
  /** While recover() runs: the ids of files this process created since it began (recovery leaves them alone). */
  private own: Set<string> | undefined;

  /**
   * `owner`: hand new queue files to this account (root's `smarthost sendmail`
   * writing for a daemon that runs as its own user, like Postfix's postdrop group).
   * `onUnreadable`: told about a queue file list() could not read (after retries of
   * transient errors such as EMFILE), with its error; it is left in place for a
   * human instead of stopping the whole queue. `now`: the clock of queue ids and of
   * the pause after a failed create (tests drive it instead of sleeping).
   */
  constructor(dataDir: string, private readonly opts: {
    readonly owner?: { readonly uid: number; readonly gid: number };
    readonly onUnreadable?: (id: string, error: Error) => void;
    /** Keep delivered messages' files for reuse (the daemon; see "Spare files" above). */
    readonly recycle?: boolean;
    readonly now?: () => number;
  } = {}) {
    this.root = path.join(dataDir, 'queue');
    this.tmp = path.join(this.root, 'tmp');
    this.messages = path.join(this.root, 'messages');
    this.state = path.join(this.root, 'state');
    this.corrupt = path.join(this.root, 'corrupt');
    this.dirSync = new DirSync(this.messages);
    this.stateSync = new DirSync(this.state);
  }

  private now(): number { return (this.opts.now ?? Date.now)(); }
  /** Spare files ready to be written over and empty files named ahead, for tests to wait on. */
  get ready(): { readonly spares: number; readonly fresh: number } { return { spares: this.spares.length, fresh: this.fresh.length }; }

  /** Creates the directories, nothing else: for `smarthost sendmail`, which must not recover a running daemon's spool. */
  prepare(): void { this.ensureLayout(); }

  private ensureLayout(): void {
    for (const d of [this.tmp, this.messages, this.state, this.corrupt]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  async recover(found?: (m: Recovered) => void): Promise<RecoveryReport> {
    this.ensureLayout();
    const own = new Set<string>();
    this.own = own;
    this.refill();
    try {
      return await recoverFiles({ tmp: this.tmp, messages: this.messages, state: this.state, corrupt: this.corrupt }, {
        own: (id) => own.has(id), stopped: () => this.closed, ...(found ? { found } : {}),
        unreadable: (id, e) => this.opts.onUnreadable?.(id, e),
      });
    } finally {
      if (this.own === own) this.own = undefined;
    }
  }

  async receive(envelope: Omit<NewEnvelope, 'id'>): Promise<Incoming> {
    if (this.opts.recycle) {
      const ready = this.takeReady();
      this.refill();
      if (ready) return this.incoming(ready.id, { ...ready, named: true }, envelope);
    }
    // none named ahead (or `smarthost sendmail`): create one now; commit also fsyncs messages/ for it
    for (let attempt = 0; ; attempt++) {
      const id = newQueueId(this.now());
      this.own?.add(id);
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
    if (!this.opts.recycle || this.closed || this.refilling || this.fresh.length >= FRESH / 2 || this.now() < this.createPausedUntil) return;
    this.refilling = this.nameAhead(FRESH - this.fresh.length).finally(() => { this.refilling = undefined; });
  }

  /** refill()'s batch: `count` empty files created FRESH_CREATES at a time, one fsync of messages/, then handed out. */
  private async nameAhead(count: number): Promise<void> {
    const batch: Fresh[] = [];
    const pause = () => { this.createPausedUntil = this.now() + 1000; count = 0; };
    const creator = async () => {
      while (count > 0 && !this.closed) {
        count--;
        const id = newQueueId(this.now());
        this.own?.add(id);
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

  async get(id: string, opts: { hasState?: boolean } = {}): Promise<QueueEntry | undefined> {
    if (!isQueueId(id)) return undefined;
    const head = await this.readHead(path.join(this.messages, id));
    // another id: the daemon made the file a spare and wrote the next message over it while we read
    if (!head || head.envelope.id !== id) return undefined;
    return { envelope: head.envelope, state: opts.hasState === false ? initialState(head.envelope) : await this.readState(id, head.envelope) };
  }

  unclaimed(known: (id: string) => boolean, before: number): Promise<string[]> {
    return unclaimedIds(this.messages, known, before);
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

  /** listAll() one message at a time, for a listing printed as it is read: faster, and flat in memory (see fs-listing.ts). */
  scan(): AsyncGenerator<Scanned> {
    return scanMessages({ messages: this.messages, state: this.state }, (id) => this.get(id));
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
      && this.spares.length + this.sparesPending.size < SPARES ? path.join(this.messages, newQueueId(this.now())) : undefined;
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
    this.own?.add(path.basename(spare));
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
