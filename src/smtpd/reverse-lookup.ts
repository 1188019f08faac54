// Client host names for the log and the Received header. smtp-server waits for
// this lookup before it greets, so it must not hold a session: answers are
// cached (a client that connects once per message is looked up once), and a
// lookup slower than `waitMs` leaves that session's client "unknown", as Postfix
// logs a client whose name it could not get; the late answer still fills the
// cache for the next connection. getnameinfo() honours /etc/hosts
// (localhost[127.0.0.1]), unlike dns.reverse.
import dns from 'node:dns';

export type LookupFn = (ip: string) => Promise<string | undefined>;

export interface ReverseLookupOptions {
  readonly lookup?: LookupFn;
  readonly now?: () => number;
  /** How long a session waits for an uncached name. */
  readonly waitMs?: number;
  readonly hitTtlMs?: number;
  /** How long "no name" (or a lookup that failed) is remembered. */
  readonly missTtlMs?: number;
  readonly maxEntries?: number;
}

const getnameinfo: LookupFn = (ip) => new Promise((resolve) => {
  dns.lookupService(ip, 0, (err, host) => resolve(!err && host && host !== ip ? host : undefined));
});

export class ReverseLookup {
  private readonly cache = new Map<string, { name: string | undefined; until: number }>();
  private readonly pending = new Map<string, Promise<string | undefined>>();
  private readonly lookup: LookupFn;
  private readonly now: () => number;
  private readonly waitMs: number;
  private readonly hitTtlMs: number;
  private readonly missTtlMs: number;
  private readonly maxEntries: number;

  constructor(o: ReverseLookupOptions = {}) {
    this.lookup = o.lookup ?? getnameinfo;
    this.now = o.now ?? Date.now;
    this.waitMs = o.waitMs ?? 200;
    this.hitTtlMs = o.hitTtlMs ?? 600_000;
    this.missTtlMs = o.missTtlMs ?? 60_000;
    this.maxEntries = o.maxEntries ?? 10_000;
  }

  /** smtp-server's `resolver.reverse` shape; never reports an error (no name is not one). */
  reverse(ip: string, cb: (err: Error | null, hostnames?: string[]) => void): void {
    const hit = this.cache.get(ip);
    if (hit && hit.until > this.now()) return cb(null, hit.name ? [hit.name] : []);
    let answered = false;
    const answer = (name: string | undefined) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      cb(null, name ? [name] : []);
    };
    const timer = setTimeout(() => answer(undefined), this.waitMs);
    void this.resolve(ip).then(answer);
  }

  private resolve(ip: string): Promise<string | undefined> {
    let p = this.pending.get(ip);
    if (!p) {
      p = this.lookup(ip).catch(() => undefined).then((name) => {
        this.pending.delete(ip);
        this.cache.delete(ip); // re-inserted last: the Map's order is the eviction order
        this.cache.set(ip, { name, until: this.now() + (name ? this.hitTtlMs : this.missTtlMs) });
        if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
        return name;
      });
      this.pending.set(ip, p);
    }
    return p;
  }
}
