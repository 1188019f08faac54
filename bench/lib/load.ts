// Closed-loop load: N sessions, each one connection sending messages back to
// back, or (perConnection) each opening a new connection for every message, as
// most real clients do. A warm-up phase is not counted; then a measured window
// in which every message whose 250 arrives is counted and its latency recorded.
// Hooks let the caller sample the server process exactly at the window's edges.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENVELOPE, SmtpClient } from './client.js';

export interface LoadOptions {
  readonly port: number;
  readonly sessions: number;
  readonly message: Buffer;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Called when the measured window opens and closes. */
  readonly onWindow: (edge: 'start' | 'end') => void;
  /**
   * When set, every message starts with the header line "<idHeader>: <n>", n = 1, 2, …
   * unique within this run, and onAck hears of each 250 for end of data.
   */
  readonly idHeader?: string;
  /** `at`: performance.now() when the 250 arrived; inWindow: it counts in the measured window; latency as in LoadResult. */
  readonly onAck?: (id: number, at: number, inWindow: boolean, latency: number) => void;
  /**
   * Paced instead of closed loop: each session starts a message every 1/rate s
   * (skipping the slots it missed when the server was slow), so the server sees a
   * steady offered load below its ceiling and latency shows service time rather
   * than queueing at saturation.
   */
  readonly ratePerSession?: number;
  /**
   * One message per connection: connect, 220, EHLO, [STARTTLS, EHLO, AUTH PLAIN,]
   * MAIL/RCPT/DATA pipelined, body, 250, QUIT, 221, close; then the next. Latency is
   * then from net.connect() to the 250 after the final dot.
   */
  readonly perConnection?: PerConnection;
}

export interface PerConnection {
  /** STARTTLS and AUTH PLAIN with these credentials on every connection */
  readonly login?: { readonly user: string; readonly password: string };
}

export interface LoadResult {
  readonly messages: number;
  /** every 250 for end of data, warm-up and tail included (to compare with the spool) */
  readonly acknowledged: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the load generator itself (this process) in the window */
  readonly clientCpuMs: number;
}

interface Window {
  start: number; end: number; stopping: boolean; latencies: number[]; acknowledged: number; nextId: number;
  /** per-connection clients in flight, destroyed if the run fails */
  open: Set<SmtpClient>;
}

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** One message on a new connection; the caller QUITs. `latency` is from net.connect() on. */
async function oneShot(o: LoadOptions, w: Window, prefix: Buffer | undefined): Promise<{ latency: number; at: number; client: SmtpClient }> {
  const start = performance.now();
  const c = await SmtpClient.connect(o.port);
  w.open.add(c);
  await c.ehlo();
  const login = o.perConnection?.login;
  if (login) {
    await c.starttls();
    await c.ehlo();
    await c.authPlain(login.user, login.password);
  }
  const { at } = await c.send(ENVELOPE, o.message, prefix);
  return { latency: at - start, at, client: c };
}

/** `client`: the session's connection; undefined for one connection per message. */
async function session(client: SmtpClient | undefined, o: LoadOptions, w: Window): Promise<void> {
  const interval = o.ratePerSession ? 1000 / o.ratePerSession : 0;
  // sessions start spread over one interval, not in step
  let due = performance.now() + Math.random() * interval;
  while (!w.stopping) {
    if (interval) {
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      // behind by more than a slot: skip the missed ones rather than send them back to back
      // (the offered load never exceeds the rate; the measured msg/s shows whether it kept up)
      else if (-wait > interval) due = performance.now();
      due += interval;
    }
    const id = w.nextId++;
    const prefix = o.idHeader ? Buffer.from(`${o.idHeader}: ${id}\r\n`, 'latin1') : undefined;
    const sent = client ? { ...(await client.send(ENVELOPE, o.message, prefix)), client: undefined } : await oneShot(o, w, prefix);
    const { latency, at } = sent;
    w.acknowledged++;
    const inWindow = at >= w.start && at <= w.end;
    if (inWindow) w.latencies.push(latency);
    o.onAck?.(id, at, inWindow, latency);
    if (sent.client) {
      const bye = await sent.client.quit();
      w.open.delete(sent.client);
      if (bye?.code !== 221) throw new Error(`QUIT: expected 221, got ${JSON.stringify(bye?.text)}`);
    }
  }
  await client?.quit();
}

/** Opens `n` sessions (greeting + EHLO), a few at a time. */
export async function openSessions(port: number, n: number, batch = 100): Promise<SmtpClient[]> {
  const clients: SmtpClient[] = [];
  try {
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
        const c = await SmtpClient.connect(port);
        clients.push(c);
        await c.ehlo();
      }));
    }
  } catch (e) {
    clients.forEach((c) => c.destroy());
    throw e;
  }
  return clients;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const clients = o.perConnection ? Array.from({ length: o.sessions }, () => undefined) : await openSessions(o.port, o.sessions);
  const w: Window = { start: Infinity, end: Infinity, stopping: false, latencies: [], acknowledged: 0, nextId: 1, open: new Set() };
  const running = Promise.all(clients.map((c) => session(c, o, w)));
  running.catch(() => { w.stopping = true; }); // one failure stops the others
  try {
    await Promise.race([sleep(o.warmupMs), running]);
    o.onWindow('start');
    const cpu0 = process.cpuUsage();
    w.start = performance.now();
    await Promise.race([sleep(o.measureMs), running]);
    w.end = performance.now();
    const cpu = process.cpuUsage(cpu0);
    o.onWindow('end');
    w.stopping = true;
    await running;
    const sorted = Float64Array.from(w.latencies).sort();
    const seconds = (w.end - w.start) / 1000;
    return {
      messages: sorted.length, acknowledged: w.acknowledged, seconds, perSecond: sorted.length / seconds,
      p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99),
      clientCpuMs: (cpu.user + cpu.system) / 1000,
    };
  } finally {
    w.stopping = true;
    clients.forEach((c) => c?.destroy());
    w.open.forEach((c) => c.destroy());
  }
}
