// The disk's one-at-a-time commit ceiling: a single writer creating a fresh
// 1 KB file, fdatasync()ing it and renaming it into place, back to back
// (optionally also fsync()ing the target directory, which a durable spool
// needs). Group commit is what lets the daemon go faster than this.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export interface FsyncCeiling { readonly ops: number; readonly perSecond: number; readonly meanMs: number }

export function fsyncCeiling(dataDir: string, ms: number, syncDir: boolean): FsyncCeiling {
  const tmp = path.join(dataDir, 'tmp');
  const dst = path.join(dataDir, 'messages');
  fs.mkdirSync(tmp, { recursive: true });
  fs.mkdirSync(dst, { recursive: true });
  const payload = Buffer.alloc(1024, 'x');
  const dirFd = fs.openSync(dst, 'r');
  let ops = 0;
  const start = performance.now();
  try {
    while (performance.now() - start < ms) {
      const name = `m${ops}`;
      const fd = fs.openSync(path.join(tmp, name), 'wx', 0o600);
      fs.writeSync(fd, payload);
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(path.join(tmp, name), path.join(dst, name));
      if (syncDir) fs.fsyncSync(dirFd);
      ops++;
    }
  } finally {
    fs.closeSync(dirFd);
  }
  const elapsed = performance.now() - start;
  return { ops, perSecond: (ops * 1000) / elapsed, meanMs: elapsed / ops };
}
