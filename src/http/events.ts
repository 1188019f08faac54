// The live log as server-sent events, and the last hour per minute for the
// console's charts. Both are fed by MailLog.subscribe(), so they show exactly
// what the log says.
import type { FastifyInstance } from 'fastify';
import type { LogEvent, MailLog } from '../maillog/maillog.js';

export interface MinuteBucket { readonly minute: string; delivered: number; deferred: number; bounced: number; queue: number | null }

export interface LiveStats {
  /** Oldest first, the current minute last; at most 60. */
  lastHour(): MinuteBucket[];
}

/** Delivery outcomes per minute over the last hour, and the queue size seen at the end of each minute. */
export class History implements LiveStats {
  private readonly buckets: MinuteBucket[] = [];
  private readonly unsubscribe: () => void;
  constructor(log: MailLog, private readonly queueSize: () => number, private readonly now = Date.now) {
    this.unsubscribe = log.subscribe((e) => this.record(e));
  }

  private current(): MinuteBucket {
    const minute = new Date(Math.floor(this.now() / 60_000) * 60_000).toISOString();
    let last = this.buckets.at(-1);
    if (last?.minute !== minute) {
      if (last) last.queue = this.queueSize();
      last = { minute, delivered: 0, deferred: 0, bounced: 0, queue: null };
      this.buckets.push(last);
      if (this.buckets.length > 60) this.buckets.shift();
    }
    return last;
  }

  private record(e: LogEvent): void {
    if (e.event !== 'delivery') return;
    const b = this.current();
    if (e['status'] === 'sent') b.delivered++;
    else if (e['status'] === 'deferred') b.deferred++;
    else if (e['status'] === 'bounced') b.bounced++;
  }

  lastHour(): MinuteBucket[] {
    const b = this.current();
    b.queue = this.queueSize();
    const cutoff = this.now() - 3_600_000;
    return this.buckets.filter((x) => Date.parse(x.minute) > cutoff).map((x) => ({ ...x }));
  }

  close(): void { this.unsubscribe(); }
}

export function registerEvents(app: FastifyInstance, log: MailLog, stats: LiveStats): void {
  const open = new Set<import('node:http').ServerResponse>();
  // event streams never end by themselves: end them so that close() waits only for real requests
  app.addHook('preClose', (done) => { for (const res of open) res.end(); done(); });
  app.get('/api/v1/events', { schema: { summary: 'The log, live, as server-sent events (event: log, data: the JSON log line)' } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no', 'X-Content-Type-Options': 'nosniff' });
    res.write(': smarthost log\n\n');
    const unsubscribe = log.subscribe((e) => { res.write(`event: log\ndata: ${JSON.stringify(e)}\n\n`); });
    // a comment now and then keeps proxies from closing an idle stream
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    open.add(res);
    req.raw.on('close', () => { clearInterval(keepAlive); unsubscribe(); open.delete(res); });
  });
  app.get('/api/v1/stats', { schema: { summary: 'Delivered, deferred and bounced per minute over the last hour, and the queue size' } }, async () => ({ minutes: stats.lastHour() }));
}
