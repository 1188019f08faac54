// Closed-loop load: N sessions, each one connection sending messages back to
// back, or (perConnection) each opening a new connection for every message, as
// most real clients do. A session the server ends at MAIL with 421 (smarthost's
// [limits] messages_per_session) goes on in a new connection, as real clients do;
// the result counts these reconnects. With several ports, sessions are spread
// over them evenly, like a load balancer in front of several relays. A warm-up
// phase is not counted; then a measured window in which every message whose 250
// arrives is counted and its latency recorded.
// Hooks let the caller sample the server process exactly at the window's edges.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENVELOPE, SessionEnded, SmtpClient } from './client.js';

export interface LoadOptions {
  /** Several: session i goes to port i mod their number. */
  readonly port: number | readonly number[];
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
  /** sessions the server ended with 421 at MAIL that went on in a new connection, whole run */
  readonly reconnects: number;
}

interface Window {
  start: number; end: number; stopping: boolean; latencies: number[]; acknowledged: number; nextId: number; reconnects: number;
  /** connections open now, destroyed if the run fails */
  open: Set<SmtpClient>;
}

/** One closed-loop session: its port, and its connection unless one connection per message. */
interface Session { readonly port: number; client: SmtpClient | undefined; /** messages sent on this connection */ sent: number }

const portOf = (port: LoadOptions['port'], i: number): number => (typeof port === 'number' ? port : port[i % port.length]!);

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A new connection, counted open in the window, past EHLO. */
async function connect(port: number, w: Window): Promise<SmtpClient> {
  const c = await SmtpClient.connect(port);
  w.open.add(c);
  await c.ehlo();
  return c;
}

/** One message on a new connection; the caller QUITs. `latency` is from net.connect() on. */
async function oneShot(o: LoadOptions, port: number, w: Window, prefix: Buffer | undefined): Promise<{ latency: number; at: number; client: SmtpClient }> {
  const start = performance.now();
  const c = await connect(port, w);
  const login = o.perConnection?.login;
  if (login) {
    await c.starttls();
    await c.ehlo();
    await c.authPlain(login.user, login.password);
  }
  const { at } = await c.send(ENVELOPE, o.message, prefix);
  return { latency: at - start, at, client: c };
}

/**
 * One message on the session's connection. When the server ends the session at MAIL, a new
 * connection to the same port sends it (counted); a connection ended before its first message is an error.
 */
async function sendOnSession(s: Session, o: LoadOptions, w: Window, prefix: Buffer | undefined): Promise<{ latency: number; at: number }> {
  for (let c = s.client!; ;) { // (called only for a session with a connection)
    try {
      const r = await c.send(ENVELOPE, o.message, prefix);
      s.sent++;
      return r;
    } catch (e) {
      if (!(e instanceof SessionEnded) || s.sent === 0) throw e;
      c.destroy();
      w.open.delete(c);
      s.client = c = await connect(s.port, w);
      s.sent = 0;
      w.reconnects++;
    }
  }
}

async function session(s: Session, o: LoadOptions, w: Window): Promise<void> {
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
    const sent = s.client ? { ...(await sendOnSession(s, o, w, prefix)), client: undefined } : await oneShot(o, s.port, w, prefix);
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
  await s.client?.quit();
}

/** Opens `n` sessions (greeting + EHLO), a few at a time; session i to port i mod their number. */
export async function openSessions(port: LoadOptions['port'], n: number, batch = 100): Promise<SmtpClient[]> {
  const clients: SmtpClient[] = [];
  try {
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async (_, j) => {
        const c = await SmtpClient.connect(portOf(port, i + j));
        clients[i + j] = c;
        await c.ehlo();
      }));
    }
  } catch (e) {
    clients.forEach((c) => c?.destroy());
    throw e;
  }
  return clients;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const clients = o.perConnection ? Array.from({ length: o.sessions }, () => undefined) : await openSessions(o.port, o.sessions);
  const w: Window = { start: Infinity, end: Infinity, stopping: false, latencies: [], acknowledged: 0, nextId: 1, reconnects: 0, open: new Set() };
  clients.forEach((c) => c && w.open.add(c));
  const running = Promise.all(clients.map((client, i) => session({ port: portOf(o.port, i), client, sent: 0 }, o, w)));
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
      clientCpuMs: (cpu.user + cpu.system) / 1000, reconnects: w.reconnects,
    };
  } finally {
    w.stopping = true;
    w.open.forEach((c) => c.destroy());
  }
}
