// One end-to-end cell of the relay benches: a fresh counting sink and a fresh
// system under test relaying to it, closed-loop load (warm-up, measured window),
// then the queue drains. Figures: end-to-end msg/s, enqueue-to-delivered latency
// (sink arrival - client's 250), CPU of the system's process tree per delivered
// message, lost and duplicate messages, mail log trouble.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, runLoad, type LoadResult } from './load.js';
import type { RelaySystem, SystemName, Trouble } from './relay-systems.js';
import { machineBusyMs } from './servers.js';
import { monoMs, startSink, type Sink } from './sink.js';
import { kb } from './report.js';

export const ID_HEADER = 'X-Bench-Id';
/** Adds to performance.now() to give CLOCK_MONOTONIC ms, the sink's clock (both count from the same hrtime). */
const MONO_OFFSET = monoMs() - performance.now();

export interface CellTiming {
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Give up draining after this long without a new arrival at the sink... */
  readonly drainIdleSeconds: number;
  /** ...or after this long in all. */
  readonly drainMaxSeconds: number;
}

export interface CellLoad {
  readonly sizeBytes: number;
  readonly sessions: number;
  /** wire form, see wireMessage */
  readonly message: Buffer;
  /** one message per connection (with STARTTLS + AUTH if the system has a login) */
  readonly perConnection?: boolean;
}

export interface CellResult {
  system: SystemName; sizeBytes: number; sessions: number;
  /** 250s received in the measured window */
  windowMessages: number;
  acceptedPerSecond: number;
  /** THE figure: messages arriving at the sink during the window, per second */
  e2ePerSecond: number;
  /** only window messages arriving at the sink within the window, per second (see the report's notes) */
  strictPerSecond: number;
  p50Ms: number; p99Ms: number; maxMs: number;
  /** intake latency, final dot -> 250, p99 */
  intakeP99Ms: number;
  /** CPU of the system from idle to drained, per delivered message */
  cpuMsPerMsg: number;
  /** Systems with a database server (see RelaySystem.storeCpuMs): cpuMsPerMsg split into the daemons' and the server's */
  daemonCpuMsPerMsg?: number; storeCpuMsPerMsg?: number;
  /** CPU of the system during the window, % of one CPU */
  windowCpuPct: number;
  sinkCpuMsPerMsg: number;
  /** machine busy outside system, sink and bench during the window, % of all CPUs: noise */
  otherCpuPct: number;
  /** accepted but not yet at the sink when the window opened / closed */
  backlogAtStart: number; backlogAtEnd: number;
  /** load end -> last acknowledged message at the sink */
  drainSeconds: number;
  acknowledged: number; delivered: number; lost: number; duplicates: number; otherAtSink: number;
  queuedAfter: number; connections: number;
  /** sessions the system ended with 421 at MAIL that the load went on with in a new connection */
  reconnects: number;
  /** "status=sent" lines in each daemon's mail log */
  sentPerNode: number[];
  trouble: Trouble;
}

export interface Measured {
  readonly cell: CellResult;
  readonly load: LoadResult;
  /** the load's latencies of the window's messages, ms (see LoadResult) */
  readonly latencies: number[];
}

/** Runs one cell on a fresh sink and a fresh system made by `start`; stops both. */
export async function measureCell(start: (sinkPort: number) => Promise<RelaySystem>, load: CellLoad, timing: CellTiming): Promise<Measured> {
  const sink = await startSink();
  try {
    const sut = await start(sink.port);
    try {
      await sleep(200);
      return await runCell(sut, sink, load, timing);
    } finally {
      await sut.stop();
    }
  } finally {
    await sink.stop();
  }
}

/** Waits until every acknowledged id reached the sink, or arrivals stop, or time is up. */
async function drain(sink: Sink, acked: number[], timing: CellTiming): Promise<void> {
  const deadline = Date.now() + timing.drainMaxSeconds * 1000;
  let seen = -1;
  let progressAt = Date.now();
  for (;;) {
    let missing = 0;
    for (const id of acked) if (!sink.arrivals.has(id)) missing++;
    if (missing === 0) return;
    if (sink.arrivals.size !== seen) { seen = sink.arrivals.size; progressAt = Date.now(); }
    if (Date.now() - progressAt > timing.drainIdleSeconds * 1000 || Date.now() > deadline) return;
    await sleep(50);
  }
}

/** CPU ms so far; store: the database server's part of sut (0 without one). */
interface Sample { at: number; sut: number; store: number; sink: number; machine: number; bench: number }

function sample(sut: RelaySystem, sink: Sink): Sample {
  const cpu = process.cpuUsage();
  return { at: monoMs(), sut: sut.cpuMs(), store: sut.storeCpuMs?.() ?? 0, sink: sink.cpuMs(), machine: machineBusyMs(), bench: (cpu.user + cpu.system) / 1000 };
}

async function runCell(sut: RelaySystem, sink: Sink, load: CellLoad, timing: CellTiming): Promise<Measured> {
  const idle = sample(sut, sink);
  const run = await runLoadPhase(sut, sink, load, timing);
  const loadEnd = monoMs();
  await drain(sink, run.acked, timing);
  await sleep(100); // the last report batch
  const drained = sample(sut, sink);
  const queued = await sut.queued();
  return { cell: figures(sut, sink, load, run, { idle, drained, loadEnd, queued }), load: run.result, latencies: run.latencies };
}

/** What the load phase saw: each 250 (when, and whether in the window) and the machine at the window's edges. */
interface LoadPhase {
  readonly result: LoadResult;
  /** by id, CLOCK_MONOTONIC ms of the 250 */
  readonly ackAt: number[];
  readonly acked: number[];
  readonly windowIds: number[];
  /** the load's latencies of the window's messages */
  readonly latencies: number[];
  readonly start: Sample;
  readonly end: Sample;
  /** accepted but not at the sink yet when the window opened / closed */
  readonly backlog: { readonly start: number; readonly end: number };
}

async function runLoadPhase(sut: RelaySystem, sink: Sink, load: CellLoad, timing: CellTiming): Promise<LoadPhase> {
  const ackAt: number[] = [];
  const acked: number[] = [];
  const windowIds: number[] = [];
  const latencies: number[] = [];
  const edges: Partial<Record<'start' | 'end', Sample>> = {};
  const backlog = { start: 0, end: 0 };
  const result = await runLoad({
    port: sut.ports, sessions: load.sessions, message: load.message, idHeader: ID_HEADER,
    warmupMs: timing.warmupSeconds * 1000, measureMs: timing.seconds * 1000,
    ...(load.perConnection ? { perConnection: sut.login ? { login: sut.login } : {} } : {}),
    onWindow: (e) => {
      edges[e] = sample(sut, sink);
      backlog[e] = acked.filter((id) => !sink.arrivals.has(id)).length;
    },
    onAck: (id, at, inWindow, latency) => {
      ackAt[id] = at + MONO_OFFSET;
      acked.push(id);
      if (inWindow) { windowIds.push(id); latencies.push(latency); }
    },
  });
  return { result, ackAt, acked, windowIds, latencies, start: edges.start!, end: edges.end!, backlog };
}

/** The cell's figures from the load phase, the sink's arrivals, and CPU from idle to drained. */
function figures(sut: RelaySystem, sink: Sink, load: CellLoad, run: LoadPhase, at: { idle: Sample; drained: Sample; loadEnd: number; queued: number }): CellResult {
  const { start, end, windowIds, acked } = run;
  const a = arrivals(sink, run, at.loadEnd);
  const sorted = Float64Array.from(a.latencies).sort();
  const windowMs = end.at - start.at;
  const busy = (x: Sample, y: Sample) => ({ sut: y.sut - x.sut, store: y.store - x.store, sink: y.sink - x.sink, machine: y.machine - x.machine, bench: y.bench - x.bench });
  const perMsg = (ms: number) => ms / Math.max(1, a.delivered);
  const w = busy(start, end);
  const whole = busy(at.idle, at.drained);
  return {
    system: sut.name, sizeBytes: load.sizeBytes, sessions: load.sessions,
    windowMessages: windowIds.length,
    acceptedPerSecond: (windowIds.length * 1000) / windowMs,
    e2ePerSecond: (a.inWindow * 1000) / windowMs,
    strictPerSecond: (a.strict * 1000) / windowMs,
    p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    intakeP99Ms: run.result.p99Ms,
    cpuMsPerMsg: perMsg(whole.sut),
    ...(sut.storeCpuMs ? { daemonCpuMsPerMsg: perMsg(whole.sut - whole.store), storeCpuMsPerMsg: perMsg(whole.store) } : {}),
    windowCpuPct: (100 * w.sut) / windowMs,
    sinkCpuMsPerMsg: perMsg(whole.sink),
    otherCpuPct: Math.max(0, (100 * (w.machine - w.sut - w.sink - w.bench)) / (windowMs * os.cpus().length)),
    backlogAtStart: run.backlog.start, backlogAtEnd: run.backlog.end,
    drainSeconds: Math.max(0, a.lastArrival - at.loadEnd) / 1000,
    acknowledged: acked.length, delivered: a.delivered, lost: acked.length - a.delivered,
    duplicates: sink.duplicates(), otherAtSink: sink.other(),
    queuedAfter: at.queued, connections: sink.connections(),
    reconnects: run.result.reconnects, sentPerNode: sut.sent(),
    trouble: sut.trouble(),
  };
}

/**
 * What reached the sink: enqueue-to-delivered latencies of the window's messages, how many of
 * them arrived within the window (strict), acknowledged ones delivered and the last arrival,
 * and every arrival within the window.
 */
function arrivals(sink: Sink, run: LoadPhase, loadEnd: number) {
  const latencies: number[] = [];
  let strict = 0;
  for (const id of run.windowIds) {
    const at = sink.arrivals.get(id);
    if (at === undefined) continue;
    latencies.push(at - run.ackAt[id]!);
    if (at <= run.end.at) strict++;
  }
  let delivered = 0;
  let lastArrival = loadEnd;
  for (const id of run.acked) {
    const at = sink.arrivals.get(id);
    if (at === undefined) continue;
    delivered++;
    if (at > lastArrival) lastArrival = at;
  }
  let inWindow = 0;
  for (const at of sink.arrivals.values()) if (at >= run.start.at && at <= run.end.at) inWindow++;
  return { latencies, strict, delivered, lastArrival, inWindow };
}

export const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

/** Report lines on cells whose mail log showed trouble or that left something behind. */
export function troubleLines<C extends CellResult>(cells: C[], label = (c: C) => `${c.system} ${kb(c.sizeBytes)} x ${c.sessions}`): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const counts = Object.entries(c.trouble.counts);
    if (!counts.length && !c.queuedAfter && !c.duplicates && !c.otherAtSink) continue;
    out.push(`${label(c)}: ${counts.map(([k, n]) => `${n} ${k}`).join(', ') || 'no log trouble'}` +
      `; ${c.queuedAfter} still queued after draining; ${c.duplicates} duplicate and ${c.otherAtSink} id-less messages at the sink`);
    c.trouble.examples.forEach((l) => out.push(`    ${l}`));
  }
  return out;
}
