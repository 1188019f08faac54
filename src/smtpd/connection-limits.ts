// Counts open sessions in total and per client address, shared by all
// listeners, so `limits.connections` and `limits.connections_per_ip` hold
// for the whole daemon (Postfix anvil's connection count).
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';

export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  constructor(private maxTotal: number, private maxPerIp: number) {}

  /** New limits after a reload; sessions already open are counted as before. */
  setLimits(maxTotal: number, maxPerIp: number): void {
    this.maxTotal = maxTotal;
    this.maxPerIp = maxPerIp;
  }

  /** Takes a slot, or returns the 421 reply that refuses the connection. */
  open(ip: string): Reply | undefined {
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
}
