// The one way any process reaches the queue: the daemon, its delivery thread,
// `smarthost sendmail`, the `queue` verbs and `check`. It picks the store that
// [queue] store names (files under data_dir by default, or PostgreSQL) and
// sets it up for what the process does with it. The PostgreSQL driver is
// loaded only when that store is used.
import fs from 'node:fs';
import type { QueueConfig } from '../config/types.js';
import { FsSpool } from './fs-spool.js';
import type { PgLimits } from './pg-limits.js';
import type { PgSpool } from './pg-spool.js';
import type { Spool } from './spool.js';

export interface SpoolUse {
  /**
   * 'daemon': receives, recovers and delivers (the file store names files ahead and reuses
   * delivered ones; the shared store leases new mail and listens for work);
   * 'submit': `smarthost sendmail` writes new mail for the daemon (must not recover its queue);
   * 'reader': reads and changes messages (the `queue` verbs, the delivery thread, `check`).
   */
  readonly role: 'daemon' | 'submit' | 'reader';
  /** Files: hand new queue files to this account (root's sendmail writing for a daemon that runs as its own user). */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Files: told about a queue file that could not be read; it is left in place for a human. */
  readonly onUnreadable?: (id: string, error: Error) => void;
}

/** Opens the queue; for 'submit', a file store's folders are created (errors such as EACCES are thrown). */
export async function openSpool(queue: QueueConfig, dataDir: string, use: SpoolUse): Promise<Spool> {
  if (queue.store.kind === 'postgresql') {
    if (use.role === 'daemon') fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // the control socket, certificates, state of its own
    const { PgSpool } = await import('./pg-spool.js');
    return PgSpool.open(queue.store, { node: queue.nodeName, leaseMs: queue.leaseMs, role: use.role });
  }
  const spool = new FsSpool(dataDir, {
    recycle: use.role === 'daemon',
    ...(use.owner ? { owner: use.owner } : {}), ...(use.onUnreadable ? { onUnreadable: use.onUnreadable } : {}),
  });
  if (use.role === 'submit') spool.prepare();
  return spool;
}

/** On a PostgreSQL store, the cluster-wide limits in the same database (queue/pg-limits.ts), on the spool's pool; none on files. */
export async function openLimits(queue: QueueConfig, spool: Spool, warn: (message: string) => void): Promise<PgLimits | undefined> {
  if (queue.store.kind !== 'postgresql') return undefined;
  const { PgLimits } = await import('./pg-limits.js');
  return new PgLimits((spool as PgSpool).pool, { node: queue.nodeName, leaseMs: queue.leaseMs, warn });
}
