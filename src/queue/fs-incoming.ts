// A message being received into a queue file.
//
// Commit (the daemon): the message is written into a file that already has
// its final name in messages/, a name made durable by an fsync of messages/
// before the file was handed out ("Files named ahead" in fs-spool.ts). The first line
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
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import zlib from 'node:zlib';
import type { Envelope } from '../mail/envelope.js';
import type { DirSync } from './dir-sync.js';
import { MAGIC_BUF, PENDING_BUF, trailer } from './fs-format.js';
import { SpoolFullError, type Incoming, type NewEnvelope } from './spool.js';

/** Small messages are written in one go at commit; larger ones in chunks of this size. */
const FLUSH_AT = 256 * 1024;
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export function storageError(e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  return err && FULL_CODES.has(err.code ?? '') ? new SpoolFullError(err.message, { cause: e }) : (e as Error);
}

/** Where an incoming message's file is: its final name, whether that name is durable yet, and (sendmail) the tmp/ name it is written under. */
export interface Place {
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

export class FsIncoming implements Incoming {
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
