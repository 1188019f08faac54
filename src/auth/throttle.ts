// Failed-AUTH throttling per client address, across connections (like
// Postfix anvil): after `count` failures within `windowMs`, the address gets
// 421 4.7.0 until the oldest of those failures leaves the window.
import type { Rate } from '../config/units.js';

const MAX_TRACKED = 100_000; // bounds memory under a distributed attack

export class AuthThrottle {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly rate: Rate) {}

  private recent(ip: string, now: number): number[] {
    const list = (this.failures.get(ip) ?? []).filter((t) => now - t < this.rate.windowMs);
    if (list.length) this.failures.set(ip, list); else this.failures.delete(ip);
    return list;
  }

  blocked(ip: string, now = Date.now()): boolean {
    return this.recent(ip, now).length >= this.rate.count;
  }

  fail(ip: string, now = Date.now()): void {
    const list = this.recent(ip, now);
    list.push(now);
    if (!this.failures.has(ip) && this.failures.size >= MAX_TRACKED) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(ip, list.slice(-this.rate.count));
  }
}
