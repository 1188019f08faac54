// Delivers one message into a Maildir (https://cr.yp.to/proto/maildir.html):
// write tmp/<unique>, fsync, link to new/<unique>, fsync new/. A resolved
// promise means the message survives a crash; a rejection means nothing was
// left behind (so a retry cannot duplicate it) and carries the original errno
// code (ENOSPC, EACCES, ENOTDIR …) for the caller to classify. Mailboxes are
// created on first delivery.
import { constants } from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export interface MaildirOwner { readonly uid: number; readonly gid: number }

const SUBDIRS = ['tmp', 'new', 'cur'] as const;

// Q<n> in the unique name: two deliveries in the same microsecond still differ.
let deliveries = 0;

/**
 * `<seconds>.M<microseconds>P<pid>Q<counter>.<host>,S=<size>`, the modern
 * unique name of the Maildir spec. Dovecot and Courier read `,S=` as the size,
 * which saves them a stat.
 */
export function uniqueName(hostname: string, size: number): string {
  const ms = Date.now();
  // Date has milliseconds only; the monotonic clock fills in the last three
  // digits. Uniqueness never depends on them: the counter guarantees it.
  const micro = (ms % 1000) * 1000 + Number((process.hrtime.bigint() / 1000n) % 1000n);
  deliveries += 1;
  return `${Math.floor(ms / 1000)}.M${micro}P${process.pid}Q${deliveries}.${safeHost(hostname)},S=${size}`;
}

// The spec's rule: '/' and ':' would break the path and the ":2,flags" suffix.
function safeHost(hostname: string): string {
  return hostname.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/** Writes `message` into dir/new via dir/tmp; resolves with the final path once the file and dir/new are fsynced. */
export async function deliverToMaildir(
  dir: string,
  message: Buffer | readonly Buffer[],
  opts: { readonly hostname: string; readonly owner?: MaildirOwner },
): Promise<string> {
  const chunks: readonly Buffer[] = Buffer.isBuffer(message) ? [message] : message;
  const size = chunks.reduce((n, c) => n + c.length, 0);
  // set up once per process; a failure below forgets it, so a removed Maildir is made again
  if (!prepared.has(dir)) { await ensureMaildir(dir, opts.owner); prepared.add(dir); }
  try {
    return await writeMessage(dir, chunks, size, opts);
  } catch (e) {
    prepared.delete(dir);
    throw e;
  }
}

/** Maildirs known to have tmp/, new/ and cur/ (four mkdir calls per delivery otherwise). */
const prepared = new Set<string>();

async function writeMessage(dir: string, chunks: readonly Buffer[], size: number, opts: { readonly hostname: string; readonly owner?: MaildirOwner }): Promise<string> {
  const name = uniqueName(opts.hostname, size);
  const tmpFile = path.join(dir, 'tmp', name);
  const newFile = path.join(dir, 'new', name);
  await writeTmp(tmpFile, chunks, opts.owner);
  let linked = false;
  try {
    // link, not rename: it fails with EEXIST instead of replacing a message.
    await fsp.link(tmpFile, newFile);
    linked = true;
    await fsp.unlink(tmpFile);
    await syncDir(path.join(dir, 'new'));
    return newFile;
  } catch (e) {
    await removeQuietly(tmpFile);
    // Not known to be durable, and the caller will retry: take it back so the
    // user does not get it twice (the IMAP server may already have moved it).
    if (linked) await removeQuietly(newFile);
    throw e;
  }
}

/**
 * Creates dir, tmp/, new/ and cur/ (0700) where missing, and gives the ones it
 * created to `owner`. Missing parents get the usual 0755-ish mode and stay
 * root's: the user's IMAP server must be able to walk through them.
 */
async function ensureMaildir(dir: string, owner: MaildirOwner | undefined): Promise<void> {
  const parents: string[] = [];
  const created: string[] = [];
  for (const d of [dir, ...SUBDIRS.map((s) => path.join(dir, s))]) {
    if (!(await (d === dir ? makeDirAndParents(d, parents) : makeDir(d)))) continue;
    created.push(d);
    if (owner) await fsp.chown(d, owner.uid, owner.gid);
  }
  // A new directory entry is only durable once its parent is fsynced.
  const touched = new Set([...parents, ...created].map((d) => path.dirname(path.resolve(d))));
  for (const parent of touched) await syncDir(parent);
}

/** True when it created `d`; false when something is already there (a file there fails later, with ENOTDIR). */
async function makeDir(d: string): Promise<boolean> {
  try {
    await fsp.mkdir(d, { mode: 0o700 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** makeDir, creating missing parents first; adds those to `parents`, top first. */
async function makeDirAndParents(dir: string, parents: string[]): Promise<boolean> {
  // Plain mkdir first: it costs one call when the parents exist, and a file in
  // the way gives ENOTDIR (recursive mkdir would say EEXIST, which misleads).
  try {
    return await makeDir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const first = await fsp.mkdir(path.dirname(dir), { recursive: true });
  if (first !== undefined) parents.push(...ancestorsFrom(path.resolve(first), path.resolve(dir, '..')));
  return makeDir(dir);
}

/** `top` and every directory below it down to `bottom`, top first. */
function ancestorsFrom(top: string, bottom: string): string[] {
  const out: string[] = [];
  for (let d = bottom; d !== path.dirname(d) && d.length >= top.length; d = path.dirname(d)) out.unshift(d);
  return out;
}

/** Creates `file` (it must not exist), writes and fsyncs it; removes it again on failure. */
async function writeTmp(file: string, chunks: readonly Buffer[], owner: MaildirOwner | undefined): Promise<void> {
  const fh = await fsp.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await writeAll(fh, chunks);
    // fchown before fsync: no path to race on, and the owner is synced too.
    if (owner) await fh.chown(owner.uid, owner.gid);
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await removeQuietly(file);
    throw e;
  }
}

// FileHandle.write may write less than asked (a full disk mid-write), so loop.
async function writeAll(fh: FileHandle, chunks: readonly Buffer[]): Promise<void> {
  let position = 0;
  for (const chunk of chunks) {
    for (let done = 0; done < chunk.length;) {
      const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position);
      if (bytesWritten === 0) throw new Error(`write() made no progress at byte ${position}`);
      done += bytesWritten;
      position += bytesWritten;
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

// Cleanup must not replace the error the caller needs to classify.
async function removeQuietly(file: string): Promise<void> {
  await fsp.unlink(file).catch(() => undefined);
}
