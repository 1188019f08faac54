// Recovery of the file spool at start (FsSpool.recover()). It reads each file
// in messages/ once, in directory order: a message is reported to the queue
// manager as a Recovered summary (ids and times, not its envelope), a file
// never acknowledged is removed, a corrupt one moved to corrupt/. Then state
// files whose message is gone are removed.
//
// It runs while the daemon already takes mail: files this process created
// since it began (`own`) are not looked at, so a message being received is
// never taken for a crash's leftover. Small files are read with synchronous
// calls, BATCH of them between two turns of the event loop: one file open at
// a time, and sessions wait at most one batch; a pool round trip per file
// cost several times more. Large files, and any read that fails for a
// moment (EMFILE), go the asynchronous way with retries.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import type { Envelope } from '../mail/envelope.js';
import { isQueueId } from '../mail/queue-id.js';
import { isTransient, retryTransient } from './bounded.js';
import { DirSync } from './dir-sync.js';
import { examineBuffer, examineHandle, SMALL_READ, type Examined } from './fs-format.js';
import { dueOf, initialState, type DeliveryState, type NewEnvelope, type Recovered, type RecoveryReport } from './spool.js';

/** Files read between two turns of the event loop. */
const BATCH = 128;

export interface SpoolDirs { readonly tmp: string; readonly messages: string; readonly state: string; readonly corrupt: string }

export interface RecoveryHooks {
  /** Created by this process since recovery began: not a leftover, not to be reported. */
  own(id: string): boolean;
  /** The spool was closed: stop. */
  stopped(): boolean;
  found?(m: Recovered): void;
  /** A message file that could not be read (after retries): it stays, with its state. */
  unreadable(id: string, error: Error): void;
}

export async function recoverFiles(dirs: SpoolDirs, hooks: RecoveryHooks): Promise<RecoveryReport> {
  const counts = { messages: 0, discarded: await cleanTmp(dirs.tmp), corrupt: 0 };
  await inBatches(dirs.messages, hooks, async (entry) => {
    const name = entry.name;
    if (hooks.own(name)) return;
    const file = path.join(dirs.messages, name);
    // a fifo or socket under a queue id would block a read: not ours, like any other odd name
    const odd = !isQueueId(name) || !(entry.isFile() || entry.isDirectory());
    const result = odd ? { kind: 'corrupt' as const } : await examineOne(file, name, dirs.state).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') hooks.unreadable(name, e); // its state stays: the file may be fine, only not readable now
      return undefined;
    });
    if (!result) return;
    if (result.kind === 'message') {
      counts.messages++;
      hooks.found?.(summary(name, result.envelope, result.size, result.state));
    } else if (result.kind === 'corrupt') {
      await fsp.rename(file, path.join(dirs.corrupt, name)).catch(() => undefined);
      counts.corrupt++;
    } else {
      await fsp.unlink(file).catch(() => undefined);
      if (result.kind === 'unfinished') counts.discarded++;
    }
  });
  await removeOrphanStates(dirs, hooks);
  await new DirSync(dirs.tmp).sync().catch(() => undefined);
  return counts;
}

/** Files of `smarthost sendmail` processes that are gone (a live one is still writing its own). */
async function cleanTmp(tmp: string): Promise<number> {
  let discarded = 0;
  for (const name of await fsp.readdir(tmp)) {
    const pid = Number(name.split('.').pop());
    if (Number.isInteger(pid) && pidAlive(pid)) continue;
    await fsp.unlink(path.join(tmp, name)).catch(() => undefined);
    discarded++;
  }
  return discarded;
}

function pidAlive(pid: number): boolean {
  if (pid <= 0 || pid === process.pid) return false; // ours from an earlier life of this pid? we only recover at start
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Calls `each` for every entry of `dir`, BATCH at a time, then lets the event loop turn; stops when the spool closes. */
async function inBatches(dir: string, hooks: RecoveryHooks, each: (entry: fs.Dirent) => Promise<void>): Promise<void> {
  const handle = await fsp.opendir(dir, { bufferSize: 1024 });
  let n = 0;
  for await (const entry of handle) { // (the loop closes the directory, also on a break)
    if (hooks.stopped()) break;
    await each(entry);
    if (++n % BATCH === 0) await turn();
  }
}

type Found = Exclude<Examined, { kind: 'message' }> | (Extract<Examined, { kind: 'message' }> & { readonly state: SavedState });
/** A state file's contents; `saved: false` when there is none (every recipient queued). */
interface SavedState { readonly state: DeliveryState; readonly saved: boolean }

/** What a file in messages/ is, and the state of a message; read at once when small. */
async function examineOne(file: string, id: string, stateDir: string): Promise<Found> {
  let found: Examined | undefined;
  try { found = examineSmall(file, id); } catch (e) {
    if (!isTransient(e)) throw e;
  }
  found ??= await retryTransient(async () => {
    const fh = await fsp.open(file, 'r');
    try { return await examineHandle(fh, id); } finally { await fh.close(); }
  });
  if (found.kind !== 'message') return found;
  return { ...found, state: await readState(path.join(stateDir, `${id}.json`), { ...found.envelope, size: found.size }) };
}

/** examineBuffer() of a file up to SMALL_READ bytes, read with one synchronous call; undefined for a larger one. */
function examineSmall(file: string, id: string): Examined | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > SMALL_READ) return undefined;
    const all = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(fd, all, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return examineBuffer(all.subarray(0, got), id);
  } finally {
    fs.closeSync(fd);
  }
}

/** The saved state; none saved (or not JSON): every recipient queued, as FsSpool.get() reads it. */
async function readState(file: string, envelope: Envelope): Promise<SavedState> {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: initialState(envelope), saved: false };
    if (!isTransient(e)) throw e;
    text = await retryTransient(() => fsp.readFile(file, 'utf8'));
  }
  try { return { state: JSON.parse(text) as DeliveryState, saved: true }; } catch { return { state: initialState(envelope), saved: true }; }
}

function summary(id: string, envelope: NewEnvelope, size: number, { state, saved }: SavedState): Recovered {
  return { id, arrived: Date.parse(envelope.arrived) || 0, size, held: state.held === true, due: dueOf(state), hasState: saved };
}

/** State files whose message is gone (a crash between the two unlinks of a removal), and leftover temporary ones. */
async function removeOrphanStates(dirs: SpoolDirs, hooks: RecoveryHooks): Promise<void> {
  const ours = `.${process.pid}.tmp`;
  await inBatches(dirs.state, hooks, async ({ name }) => {
    const id = /^([0-9A-F]{18})\.json$/.exec(name)?.[1];
    if (id ? hooks.own(id) || fs.existsSync(path.join(dirs.messages, id)) : name.endsWith(ours)) return;
    await fsp.unlink(path.join(dirs.state, name)).catch(() => undefined);
  });
}
