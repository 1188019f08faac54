// End-to-end relay benchmark: N closed-loop client sessions -> system under
// test on 127.0.0.1 -> counting sink (bench/sink-server.ts, its own process).
// For smarthost and, when installed, Postfix (both fsync before 250), each cell
// (sessions x size) runs on a fresh instance and sink: warm-up, a measured
// window, then the queue drains; all cells again for each of BENCH_ROUNDS
// rounds, and the verdict compares medians. Reports end-to-end msg/s, enqueue-to-delivered
// latency (sink arrival - client's 250), CPU ms/msg of the system's process
// tree, lost messages, and smarthost/Postfix per cell against the 2x target.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, runLoad } from './lib/load.js';
import { wireMessage } from './lib/messages.js';
import { postfixMissing, postfixSettings, startPostfix, startSmarthost, type RelaySystem, type SystemName, type Trouble } from './lib/relay-systems.js';
import { CLK_TCK, DAEMON_NODE_OPTIONS, machineBusyMs, removeTempDirs } from './lib/servers.js';
import { monoMs, startSink, type Sink } from './lib/sink.js';
import { f, kb, table } from './lib/report.js';

// ---- settings (environment) ----

const list = (v: string | undefined, dflt: number[]) => (v ? v.split(',').map(Number) : dflt);
const SETTINGS = {
  seconds: Number(process.env.BENCH_SECONDS ?? 5),
  /** longer than intake's: Postfix takes over a second to fill its pipeline */
  warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 2),
  sessions: list(process.env.BENCH_SESSIONS, [10, 50]),
  /** Every cell runs this many times, rounds one after the other; the verdict takes each system's median. */
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  sizes: list(process.env.BENCH_SIZES, [1024, 100 * 1024]),
  /** Give up draining after this long without a new arrival at the sink... */
  drainIdleSeconds: Number(process.env.BENCH_DRAIN_IDLE_SECONDS ?? 5),
  /** ...or after this long in all. */
  drainMaxSeconds: Number(process.env.BENCH_DRAIN_MAX_SECONDS ?? 30),
  /** smarthost [relay] concurrency; unset: smarthost's default */
  concurrency: process.env.BENCH_RELAY_CONCURRENCY ? Number(process.env.BENCH_RELAY_CONCURRENCY) : undefined,
  /** UV_THREADPOOL_SIZE for the daemon; unset: left to the CLI */
  threadpool: process.env.BENCH_THREADPOOL,
  /** "smarthost,postfix" by default; one name runs only that system */
  systems: (process.env.BENCH_SYSTEMS ?? 'smarthost,postfix').split(',') as SystemName[],
};
const ID_HEADER = 'X-Bench-Id';
const TARGET_RATIO = 2;
/** Adds to performance.now() to give CLOCK_MONOTONIC ms, the sink's clock (both count from the same hrtime). */
const MONO_OFFSET = monoMs() - performance.now();

// ---- one cell ----

interface Cell {
  system: SystemName; sizeBytes: number; sessions: number; round: number;
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
  trouble: Trouble;
}

/** Postfix's version and the parameters that shape this bench, read from the first instance. */
let postfixInfo: Record<string, string> | undefined;

async function startSystem(name: SystemName, sinkPort: number): Promise<RelaySystem> {
  if (name === 'postfix') {
    const p = await startPostfix(sinkPort);
    try { postfixInfo ??= postfixSettings(p.etcDir); } catch (e) { await p.stop(); throw e; }
    return p;
  }
  return startSmarthost(sinkPort, {
    env: SETTINGS.threadpool ? { UV_THREADPOOL_SIZE: SETTINGS.threadpool } : {},
    ...(SETTINGS.concurrency ? { concurrency: SETTINGS.concurrency } : {}),
  });
}

/** Waits until every acknowledged id reached the sink, or arrivals stop, or time is up. */
async function drain(sink: Sink, acked: number[]): Promise<void> {
  const deadline = Date.now() + SETTINGS.drainMaxSeconds * 1000;
  let seen = -1;
  let progressAt = Date.now();
  for (;;) {
    let missing = 0;
    for (const id of acked) if (!sink.arrivals.has(id)) missing++;
    if (missing === 0) return;
    if (sink.arrivals.size !== seen) { seen = sink.arrivals.size; progressAt = Date.now(); }
    if (Date.now() - progressAt > SETTINGS.drainIdleSeconds * 1000 || Date.now() > deadline) return;
    await sleep(50);
  }
}

async function measureCell(name: SystemName, sizeBytes: number, sessions: number, message: Buffer): Promise<Omit<Cell, 'round'>> {
  const sink = await startSink();
  try {
    const sut = await startSystem(name, sink.port);
    try {
      await sleep(200);
      return await runCell(sut, sink, sizeBytes, sessions, message);
    } finally {
      await sut.stop();
    }
  } finally {
    await sink.stop();
  }
}

interface Sample { at: number; sut: number; sink: number; machine: number; bench: number }

function sample(sut: RelaySystem, sink: Sink): Sample {
  const cpu = process.cpuUsage();
  return { at: monoMs(), sut: sut.cpuMs(), sink: sink.cpuMs(), machine: machineBusyMs(), bench: (cpu.user + cpu.system) / 1000 };
}

async function runCell(sut: RelaySystem, sink: Sink, sizeBytes: number, sessions: number, message: Buffer): Promise<Omit<Cell, 'round'>> {
  const ackAt: number[] = [];      // by id, monoMs of the 250
  const acked: number[] = [];
  const windowIds: number[] = [];
  const edges: Partial<Record<'start' | 'end', Sample>> = {};
  const backlog = { start: 0, end: 0 };
  const idle = sample(sut, sink);
  const r = await runLoad({
    port: sut.port, sessions, message, idHeader: ID_HEADER,
    warmupMs: SETTINGS.warmupSeconds * 1000, measureMs: SETTINGS.seconds * 1000,
    onWindow: (e) => {
      edges[e] = sample(sut, sink);
      backlog[e] = acked.filter((id) => !sink.arrivals.has(id)).length;
    },
    onAck: (id, at, inWindow) => {
      ackAt[id] = at + MONO_OFFSET;
      acked.push(id);
      if (inWindow) windowIds.push(id);
    },
  });
  const loadEnd = monoMs();
  await drain(sink, acked);
  await sleep(100); // the last report batch
  const drained = sample(sut, sink);
  const start = edges.start!;
  const end = edges.end!;

  const latencies: number[] = [];
  let strict = 0;
  for (const id of windowIds) {
    const at = sink.arrivals.get(id);
    if (at === undefined) continue;
    latencies.push(at - ackAt[id]!);
    if (at <= end.at) strict++;
  }
  const sorted = Float64Array.from(latencies).sort();
  let delivered = 0;
  let lastArrival = loadEnd;
  for (const id of acked) {
    const at = sink.arrivals.get(id);
    if (at === undefined) continue;
    delivered++;
    if (at > lastArrival) lastArrival = at;
  }
  let inWindow = 0;
  for (const at of sink.arrivals.values()) if (at >= start.at && at <= end.at) inWindow++;
  const windowMs = end.at - start.at;
  const busy = (a: Sample, b: Sample) => ({ sut: b.sut - a.sut, sink: b.sink - a.sink, machine: b.machine - a.machine, bench: b.bench - a.bench });
  const w = busy(start, end);
  const whole = busy(idle, drained);
  return {
    system: sut.name, sizeBytes, sessions,
    windowMessages: windowIds.length,
    acceptedPerSecond: (windowIds.length * 1000) / windowMs,
    e2ePerSecond: (inWindow * 1000) / windowMs,
    strictPerSecond: (strict * 1000) / windowMs,
    p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    intakeP99Ms: r.p99Ms,
    cpuMsPerMsg: whole.sut / Math.max(1, delivered),
    windowCpuPct: (100 * w.sut) / windowMs,
    sinkCpuMsPerMsg: whole.sink / Math.max(1, delivered),
    otherCpuPct: Math.max(0, (100 * (w.machine - w.sut - w.sink - w.bench)) / (windowMs * os.cpus().length)),
    backlogAtStart: backlog.start, backlogAtEnd: backlog.end,
    drainSeconds: Math.max(0, lastArrival - loadEnd) / 1000,
    acknowledged: acked.length, delivered, lost: acked.length - delivered,
    duplicates: sink.duplicates(), otherAtSink: sink.other(),
    queuedAfter: sut.queued(), connections: sink.connections(),
    trouble: sut.trouble(),
  };
}

// ---- report ----


function cellTable(cells: Cell[]): string {
  return table(
    ['round', 'system', 'size', 'sessions', 'e2e msg/s', 'strict msg/s', 'accepted/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms/msg', 'CPU % in window',
      'backlog start/end', 'drain s', 'acked', 'lost', 'dup', 'conns', 'sink CPU ms/msg', 'other CPU %'],
    cells.map((c) => [String(c.round), c.system, kb(c.sizeBytes), String(c.sessions), f(c.e2ePerSecond, 0), f(c.strictPerSecond, 0), f(c.acceptedPerSecond, 0),
      f(c.p50Ms, 1), f(c.p99Ms, 1), f(c.maxMs, 0), f(c.cpuMsPerMsg, 3), f(c.windowCpuPct, 0), `${c.backlogAtStart}/${c.backlogAtEnd}`, f(c.drainSeconds, 2),
      String(c.acknowledged), String(c.lost), String(c.duplicates), String(c.connections), f(c.sinkCpuMsPerMsg, 3), f(c.otherCpuPct, 0)]),
  );
}

interface Verdict {
  sizeBytes: number; sessions: number; smarthost: number; postfix: number; ratio: number;
  /** smarthost / Postfix within each round, lowest and highest */
  roundRatios: number[];
  strictRatio: number; p99Ratio: number; cpuRatio: number; pass: boolean;
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

/**
 * Per cell, the median over the rounds of each figure, and their ratio. The
 * machine's speed drifts by 10-20% from minute to minute (a shared VM), so one
 * 5 s run per cell can pass or miss by luck; rounds interleave the systems.
 */
function verdicts(cells: Cell[]): Verdict[] {
  const out: Verdict[] = [];
  for (const size of SETTINGS.sizes) {
    for (const sessions of SETTINGS.sessions) {
      const of = (system: SystemName) => cells.filter((c) => c.system === system && c.sizeBytes === size && c.sessions === sessions);
      const s = of('smarthost');
      const p = of('postfix');
      if (!s.length || !p.length) continue;
      const m = (cs: Cell[], k: 'e2ePerSecond' | 'strictPerSecond' | 'p99Ms' | 'cpuMsPerMsg') => median(cs.map((c) => c[k]));
      const ratio = m(s, 'e2ePerSecond') / m(p, 'e2ePerSecond');
      const roundRatios = s.flatMap((c) => p.filter((q) => q.round === c.round).map((q) => c.e2ePerSecond / q.e2ePerSecond));
      out.push({ sizeBytes: size, sessions, smarthost: m(s, 'e2ePerSecond'), postfix: m(p, 'e2ePerSecond'), ratio,
        roundRatios: [Math.min(...roundRatios), Math.max(...roundRatios)],
        strictRatio: m(s, 'strictPerSecond') / m(p, 'strictPerSecond'), p99Ratio: m(s, 'p99Ms') / m(p, 'p99Ms'), cpuRatio: m(s, 'cpuMsPerMsg') / m(p, 'cpuMsPerMsg'),
        pass: ratio >= TARGET_RATIO && s.every((c) => c.lost === 0) });
    }
  }
  return out;
}

function troubleLines(cells: Cell[]): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const counts = Object.entries(c.trouble.counts);
    if (!counts.length && !c.queuedAfter && !c.duplicates && !c.otherAtSink) continue;
    out.push(`${c.system} ${kb(c.sizeBytes)} x ${c.sessions}: ${counts.map(([k, n]) => `${n} ${k}`).join(', ') || 'no log trouble'}` +
      `; ${c.queuedAfter} still queued after draining; ${c.duplicates} duplicate and ${c.otherAtSink} id-less messages at the sink`);
    c.trouble.examples.forEach((l) => out.push(`    ${l}`));
  }
  return out;
}

// ---- main ----

async function main(): Promise<void> {
  const started = Date.now();
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const missing = SETTINGS.systems.includes('postfix') ? postfixMissing() : 'not asked for (BENCH_SYSTEMS)';
  const systems = SETTINGS.systems.filter((s) => s !== 'postfix' || !missing);
  say(`smarthost relay bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, CLK_TCK ${CLK_TCK}, ` +
    `${SETTINGS.seconds}s per cell after ${SETTINGS.warmupSeconds}s warm-up, drain until done or ${SETTINGS.drainIdleSeconds}s without progress (${SETTINGS.drainMaxSeconds}s at most)`);
  say(`smarthost [relay] concurrency ${SETTINGS.concurrency ?? 'default (20)'}, tls = "none", mail log on stdout (a pipe to the bench, as under systemd); ` +
    `daemon UV_THREADPOOL_SIZE ${SETTINGS.threadpool ?? 'not set by the bench'}, daemon node options: ${[...DAEMON_NODE_OPTIONS, process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || 'none'}`);
  say(`messages: ${SETTINGS.sizes.map(kb).join(' and ')} bodies as in the intake bench, each with an "${ID_HEADER}: n" line on top; one recipient`);
  if (missing) say(`Postfix comparison skipped: ${missing}`);

  const cells: Cell[] = [];
  for (let round = 1; round <= SETTINGS.rounds; round++) {
    for (const size of SETTINGS.sizes) {
      const message = wireMessage(size);
      for (const sessions of SETTINGS.sessions) {
        for (const name of systems) {
          const c = { ...(await measureCell(name, size, sessions, message)), round };
          cells.push(c);
          process.stderr.write(`  round ${round}: ${name} ${kb(size)} x ${sessions}: ${f(c.e2ePerSecond, 0)} msg/s end to end (accepted ${f(c.acceptedPerSecond, 0)}/s), ` +
            `p99 ${f(c.p99Ms, 1)} ms, drain ${f(c.drainSeconds, 2)} s, lost ${c.lost}, other CPU ${f(c.otherCpuPct, 0)}%\n`);
        }
      }
    }
  }
  if (postfixInfo) say(`Postfix ${postfixInfo.mail_version}: ${Object.entries(postfixInfo).filter(([k]) => k !== 'mail_version').map(([k, v]) => `${k}=${v}`).join(', ')} (its defaults)`);

  const vs = verdicts(cells);
  const lost = cells.reduce((n, c) => n + c.lost, 0);
  say('\nRelay, end to end: client -> system under test -> sink, all on 127.0.0.1, closed loop, fresh system and sink per cell.');
  say('  e2e msg/s     = messages arriving at the sink during the measured window, per second: the sustained end-to-end rate');
  say('                  under this load (the intake rate if the system keeps up, else its delivery rate while taking mail in).');
  say('  strict msg/s  = the same, counting only messages whose 250 came in the window: lower by about latency/window and by');
  say('                  the backlog at the window start (FIFO), so it mixes latency into throughput; shown for comparison.');
  say('  accepted/s    = 250s received in the window.');
  say('  p50/p99/max   = sink arrival (final dot) - client got its 250, window messages, one CLOCK_MONOTONIC clock, ms.');
  say('  CPU ms/msg    = utime+stime of the system from idle before the first connection until drained, / delivered;');
  say('                  smarthost: the daemon process; Postfix: master + all its descendants, plus the master\'s');
  say('                  cutime+cstime, which holds the CPU of daemons that exited and were reaped (they come and go).');
  say('  CPU % in window = the same CPU during the window, % of one CPU.');
  say('  backlog       = 250 received but not at the sink yet, when the window opened/closed; drain s = load end -> last one at the sink.');
  say('  lost          = 250 received but never at the sink after draining; conns = connections the sink accepted;');
  say('  other CPU %   = machine busy outside system, sink and bench in the window, % of all CPUs: noise from other programs.');
  say(cellTable(cells));
  if (vs.length) {
    say(`\nsmarthost / Postfix, medians of ${SETTINGS.rounds} round(s) (target: e2e msg/s ratio >= ${TARGET_RATIO} in every cell, nothing lost)`);
    say(table(['size', 'sessions', 'smarthost e2e msg/s', 'Postfix e2e msg/s', 'ratio', 'result', 'ratio per round', 'strict ratio', 'p99 ratio', 'CPU/msg ratio'],
      vs.map((v) => [kb(v.sizeBytes), String(v.sessions), f(v.smarthost, 0), f(v.postfix, 0), f(v.ratio, 2), v.pass ? 'PASS' : 'MISS',
        `${f(v.roundRatios[0], 2)}-${f(v.roundRatios[1], 2)}`, f(v.strictRatio, 2), f(v.p99Ratio, 2), f(v.cpuRatio, 2)])));
  } else {
    say(`\nsmarthost / Postfix: no comparison (${missing ?? 'no cells'})`);
  }
  say('\nDurability: every message counted here was acknowledged (250) only after fsync: smarthost writes the message into a queue file');
  say('whose name was fsynced into the queue directory ahead, and fdatasyncs it before replying; Postfix cleanup(8) fsyncs the queue file before smtpd replies');
  say('(Postfix defaults, unchanged by the bench).');
  say(`Messages lost (acknowledged, never at the sink after draining): ${lost}${lost ? '  <-- MUST BE 0' : ''}`);
  const trouble = troubleLines(cells);
  say(trouble.length ? `\nMail log trouble and leftovers:\n${trouble.join('\n')}` : '\nMail logs: no deferrals, bounces, warnings or errors; queues empty after draining.');
  say(`\ntotal ${f((Date.now() - started) / 1000, 0)}s, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(JSON.stringify({ bench: 'relay', node: process.version, cpus: os.cpus().length, clkTck: CLK_TCK, settings: SETTINGS, postfix: postfixInfo ?? { skipped: missing }, cells, verdicts: vs, lost }));
}

main().finally(removeTempDirs).then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
