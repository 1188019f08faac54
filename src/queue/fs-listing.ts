// Reading every message of the file spool for `smarthost queue` and its bulk
// verbs: oldest id first, one message at a time, so a listing can be printed
// as it is read (memory: the sorted names, some 60 bytes a message, not the
// messages). Small files are read with synchronous calls (the CLI has no
// sessions to keep waiting, and a pool round trip per file cost several
// times more); a large file, or one whose read fails for a moment (EMFILE),
// goes through FsSpool.get() with its retries. Also the rescan's pass.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isQueueId } from '../mail/queue-id.js';
import { isTransient, mapBounded, retryTransient } from './bounded.js';
import { bodyRange, headFrom, SMALL_READ } from './fs-format.js';
import { initialState, type DeliveryState, type QueueEntry, type Scanned } from './spool.js';

export async function* scanMessages(dirs: { readonly messages: string; readonly state: string }, get: (id: string) => Promise<QueueEntry | undefined>): AsyncGenerator<Scanned> {
  let names: string[];
  try { names = (await fsp.readdir(dirs.messages)).filter(isQueueId).sort(); } catch { return; }
  for (const id of names) {
    let entry: QueueEntry | undefined;
    try {
      const now = readNow(dirs, id);
      entry = now === undefined ? await get(id) : now ?? undefined;
    } catch (error) {
      yield { unreadable: { id, error: error as Error } };
      continue;
    }
    if (entry) yield { entry };
  }
}

/** The message read at once: null when there is none under this id (as get() says undefined); undefined: ask get(). */
function readNow(dirs: { readonly messages: string; readonly state: string }, id: string): QueueEntry | null | undefined {
  let all: Buffer | undefined;
  try { all = readSmall(path.join(dirs.messages, id)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (isTransient(e)) return undefined;
    throw e;
  }
  if (!all) return undefined;
  const range = bodyRange(all, all.length);
  // another id: the daemon made the file a spare and wrote the next message over it
  if (!range || range.envelope.id !== id) return null;
  const envelope = { ...range.envelope, size: Math.max(0, range.end - range.offset) };
  let state: DeliveryState;
  try { state = JSON.parse(fs.readFileSync(path.join(dirs.state, `${id}.json`), 'utf8')) as DeliveryState; } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (isTransient(e)) return undefined;
    if (code !== undefined && code !== 'ENOENT') throw e;
    state = initialState(envelope); // none saved, or not JSON: as get() reads it
  }
  return { envelope, state };
}

/** The whole file if it is at most SMALL_READ bytes, else undefined. */
function readSmall(file: string): Buffer | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > SMALL_READ) return undefined;
    const all = Buffer.allocUnsafe(size);
    let got = 0;
    for (let n = -1; got < size && n !== 0; got += n) n = fs.readSync(fd, all, got, size - got, got);
    return all.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** Ids of committed messages last written before `before` (epoch ms) that `known` does not know (the daemon's rescan). */
export async function unclaimedIds(messages: string, known: (id: string) => boolean, before: number): Promise<string[]> {
  let names: string[];
  try { names = await fsp.readdir(messages); } catch { return []; }
  const candidates = names.filter((n) => isQueueId(n) && !known(n)).sort();
  const settled = await mapBounded(candidates, (id) => settledMessage(path.join(messages, id), id, before));
  return candidates.filter((_, i) => settled[i]);
}

/**
 * Whether a file is a message (not empty, nor being received, nor a spare: see Examined) last
 * written before `before`. The age is taken after the head was read: a spare keeps the old
 * message's time until it is written over, and what was read is then no older than that time.
 * Not readable even after retries: not now (the next rescan looks again).
 */
async function settledMessage(file: string, id: string, before: number): Promise<boolean> {
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
