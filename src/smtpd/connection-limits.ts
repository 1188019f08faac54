// Counts open sessions in total and per client address, shared by all
// listeners, so `limits.connections` and `limits.connections_per_ip` hold
// for the whole daemon (Postfix anvil's connection count), and connection
// attempts per client address over time (anvil's connection rate).
import type { Rate } from '../config/units.js';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';

/** Above this many addresses with recent attempts, the next attempt sweeps out the stale ones. */
const SWEEP_AT = 10_000;

export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  /** Recent connection attempts per client address, oldest first (only with a rate). */
  private readonly attempts = new Map<string, number[]>();
  constructor(private maxTotal: number, private maxPerIp: number, private rate?: Rate, private readonly now: () => number = Date.now) {}

  /** New limits after a reload; sessions already open are counted as before. */
  setLimits(maxTotal: number, maxPerIp: number, rate?: Rate): void {
    this.maxTotal = maxTotal;
    this.maxPerIp = maxPerIp;
    this.rate = rate;
  }

  /**
   * Takes a slot, or returns the 421 reply that refuses the connection. Every attempt counts
   * toward the rate, refused ones too (Postfix smtpd_client_connection_rate_limit); `exempt`
   * clients (trusted networks, as Postfix's smtpd_client_event_limit_exceptions) are not rated.
   */
  open(ip: string, exempt = false): Reply | undefined {
    if (this.rate && !exempt && this.tooFast(ip, this.rate)) return replies.tooManyConnectionsFrom(ip);
    if (this.total >= this.maxTotal) return replies.tooManyConnections();
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.maxPerIp) return replies.tooManyConnectionsFrom(ip);
    this.total++;
    this.perIp.set(ip, n + 1);
    return undefined;
  }

  close(ip: string): void {
    this.total--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip); else this.perIp.set(ip, n);
  }

  get open_(): number { return this.total; }

  private tooFast(ip: string, rate: Rate): boolean {
    const now = this.now();
    const since = now - rate.windowMs;
    if (this.attempts.size > SWEEP_AT) {
      for (const [k, ts] of this.attempts) if (ts[ts.length - 1]! <= since) this.attempts.delete(k);
    }
    const recent = (this.attempts.get(ip) ?? []).filter((t) => t > since);
    recent.push(now);
    this.attempts.set(ip, recent);
    return recent.length > rate.count;
  }
}
