// The daemon's bound [[listen]] addresses: binding them, swapping in new
// smtp-servers at a reload without dropping sessions, and draining them at a
// stop. daemon.ts decides when; this file knows how.
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/types.js';
import type { MailLog } from '../maillog/maillog.js';
import { createListener, type Listener, type SmtpdDeps } from './listener.js';

export interface BoundListener { readonly address: string; readonly host: string; readonly port: number; readonly tls: string; readonly auth: string }

type ListenConfig = Config['listen'][number];

/**
 * Stops taking connections on a listener without smtp-server's close(): once that
 * runs, smtp-server answers every command with 421, which would cut off the
 * transactions a drain lets finish. The guard (drain()) ends sessions instead.
 */
function stopAccepting(s: Listener): void {
  if (s.server.listening) s.server.close();
}

export class ListenerSet {
  /** Each bound [[listen]] address and the smtp-server that takes its new sessions. */
  private readonly bound = new Map<string, Listener>();
  /** Servers replaced or removed by a reload, until their last session ends. */
  private readonly retiring = new Set<Listener>();

  constructor(private readonly log: MailLog) {}

  private create(l: ListenConfig, deps: SmtpdDeps): Listener {
    const server = createListener(l, deps);
    server.on('error', (e: Error) => this.log.warning(`${l.address}: ${e.message}`, 'smtpd'));
    return server;
  }

  async bind(l: ListenConfig, deps: SmtpdDeps): Promise<BoundListener> {
    const server = this.create(l, deps);
    await new Promise<void>((resolve, reject) => {
      // smtp-server re-emits its net.Server's errors (EADDRINUSE, EACCES) as its own
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(l.port, l.host, () => { server.off('error', onError); resolve(); });
    });
    this.bound.set(l.address, server);
    const a = server.server.address() as AddressInfo;
    const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    this.log.listening(address, l.tls, l.auth);
    return { address, host: a.address, port: a.port, tls: l.tls, auth: l.auth };
  }

  /**
   * A reload: new addresses are bound first (if one cannot be, nothing changes and its
   * error is thrown); addresses no longer wanted stop listening, their sessions end
   * after their transaction; the others take the new config for new sessions.
   */
  async apply(next: readonly ListenConfig[], deps: SmtpdDeps): Promise<void> {
    const added = next.filter((l) => !this.bound.has(l.address));
    for (const l of added) {
      try { await this.bind(l, deps); } catch (e) {
        for (const a of added) { const s = this.bound.get(a.address); if (s) { stopAccepting(s); this.bound.delete(a.address); } }
        throw Object.assign(e as Error, { listen: l });
      }
    }
    const wanted = new Set(next.map((l) => l.address));
    for (const [address, s] of this.bound) {
      if (wanted.has(address)) continue;
      s.drain();
      stopAccepting(s);
      this.retiring.add(s);
      this.bound.delete(address);
      this.log.warning(`${address}: no longer in the configuration, stopped listening (sessions end after their transaction)`, 'master');
    }
    for (const l of next) if (!added.includes(l)) this.takeOver(this.bound.get(l.address)!, l, deps);
    for (const s of this.retiring) if (s.sessions() === 0) this.retiring.delete(s);
  }

  /**
   * A listener whose address stays: the new smtp-server takes over the bound
   * socket (its connection handler moves over), so new sessions get the new
   * config while open ones finish on the old server. Hand-written because
   * smtp-server has no reconfigure; it touches only its public `server` field.
   */
  private takeOver(old: Listener, l: ListenConfig, deps: SmtpdDeps): void {
    const next = this.create(l, deps);
    const live = old.server;
    const spare = next.server;
    live.removeAllListeners('connection');
    for (const h of spare.listeners('connection')) live.on('connection', h as (...a: unknown[]) => void);
    spare.removeAllListeners('connection');
    next.server = live;
    old.server = spare; // the retired server must never close the live socket
    this.retiring.add(old);
    this.bound.set(l.address, next);
  }

  /** No new connections or transactions; a transaction under way may finish within `graceMs`, then sessions are closed. */
  async close(graceMs: number): Promise<void> {
    const servers = [...this.bound.values(), ...this.retiring];
    for (const s of servers) { s.drain(); stopAccepting(s); }
    await waitUntil(() => servers.every((s) => s.sessions() === 0), graceMs);
    for (const s of servers) s.closeAll();
    await waitUntil(() => servers.every((s) => s.sessions() === 0), 2000);
  }
}

function waitUntil(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const tick = () => { if (done() || Date.now() >= end) resolve(); else setTimeout(tick, 50); };
    tick();
  });
}
