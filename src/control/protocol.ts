// The local control socket between `smarthost queue ...` (and `auth unblock`) and the running
// daemon: one JSON request line, one JSON reply line, over a Unix socket in
// data_dir (mode 0600, so only the owner of the queue can act on it).
import path from 'node:path';

/**
 * pickup: `smarthost sendmail` wrote these ids into the spool itself; deliver them now.
 * unblock: `smarthost auth unblock`: `ids` are client addresses whose failed-AUTH counts are
 * forgotten (ALL: of every address and account); `done` are those that had failures, `missing` those
 * that had none. unblock-user: the same for accounts (`smarthost auth unblock --user NAME`).
 */
export type ControlOp = 'flush' | 'hold' | 'release' | 'delete' | 'pickup' | 'unblock' | 'unblock-user';

export interface ControlRequest { readonly op: ControlOp; readonly ids: readonly string[] | 'ALL' }

export type ControlReply =
  /** recovering: the daemon is still reading the queue at start; a verb for ALL also applies to what it reads later. */
  | { readonly ok: true; readonly done: readonly string[]; readonly missing: readonly string[]; readonly recovering?: boolean }
  | { readonly ok: false; readonly error: string };

export function controlSocketPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'control.sock');
}

export function isControlRequest(v: unknown): v is ControlRequest {
  const r = v as ControlRequest;
  return !!r && ['flush', 'hold', 'release', 'delete', 'pickup', 'unblock', 'unblock-user'].includes(r.op) &&
    (r.ids === 'ALL' || (Array.isArray(r.ids) && r.ids.every((i) => typeof i === 'string')));
}
