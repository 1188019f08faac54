// End-to-end relay benchmark: N closed-loop client sessions -> system under
// test on 127.0.0.1 -> counting sink (bench/sink-server.ts, its own process).
// For smarthost and, when installed, Postfix (both fsync before 250), each cell
// (sessions x size) runs on a fresh instance and sink: warm-up, a measured
// window, then the queue drains; all cells again for each of BENCH_ROUNDS
// rounds, and the verdict compares medians. Reports end-to-end msg/s, enqueue-to-delivered
// latency (sink arrival - client's 250), CPU ms/msg of the system's process
// tree, lost messages, and smarthost/Postfix per cell against the 2x target.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostgres, type PgCluster } from '../test/helpers/postgres.js';
import { wireMessage } from './lib/messages.js';
import { ID_HEADER, measureCell, median, troubleLines, type CellResult } from './lib/relay-cell.js';
import { postfixMissing, postfixSettingsLine, postfixSettingsSeen, startPostfix, startSmarthost, type RelaySystem, type SystemName } from './lib/relay-systems.js';
import { CLK_TCK, DAEMON_NODE_OPTIONS, removeTempDirs } from './lib/servers.js';
import { envList, envNumber } from './lib/env.js';
import { f, kb, say, table } from './lib/report.js';

// ---- settings (environment) ----

const SETTINGS = {
  seconds: envNumber('BENCH_SECONDS', 5),
  /** longer than intake's: Postfix takes over a second to fill its pipeline */
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  sessions: envList('BENCH_SESSIONS', [10, 50]),
  /** Every cell runs this many times, rounds one after the other; the verdict takes each system's median. */
  rounds: envNumber('BENCH_ROUNDS', 3),
  sizes: envList('BENCH_SIZES', [1024, 100 * 1024]),
  /** Give up draining after this long without a new arrival at the sink... */
  drainIdleSeconds: envNumber('BENCH_DRAIN_IDLE_SECONDS', 5),
  /** ...or after this long in all. */
  drainMaxSeconds: envNumber('BENCH_DRAIN_MAX_SECONDS', 30),
  /** smarthost [relay] concurrency; unset: smarthost's default */
  concurrency: process.env.BENCH_RELAY_CONCURRENCY ? Number(process.env.BENCH_RELAY_CONCURRENCY) : undefined,
  /** UV_THREADPOOL_SIZE for the daemon; unset: left to the CLI */
  threadpool: process.env.BENCH_THREADPOOL,
  /** "smarthost,postfix" by default; one name runs only that system */
  systems: (process.env.BENCH_SYSTEMS ?? 'smarthost,postfix').split(',') as SystemName[],
  /** "postgresql": smarthost's queue in a private PostgreSQL cluster (a fresh database per cell; its CPU counted with the daemon's) */
  store: process.env.BENCH_STORE === 'postgresql' ? 'postgresql' as const : 'files' as const,
};
let pgCluster: PgCluster | undefined;
let pgDatabases = 0;
const TARGET_RATIO = 2;

// ---- one cell ----

interface Cell extends CellResult { round: number }

async function startSystem(name: SystemName, sinkPort: number): Promise<RelaySystem> {
  if (name === 'postfix') return startPostfix(sinkPort);
  const store = SETTINGS.store === 'postgresql' ? await pgStore() : {};
  return startSmarthost(sinkPort, {
    ...store,
    env: SETTINGS.threadpool ? { UV_THREADPOOL_SIZE: SETTINGS.threadpool } : {},
    ...(SETTINGS.concurrency ? { concurrency: SETTINGS.concurrency } : {}),
  });
}

/** A fresh database in the bench's private cluster, as the daemon's [queue] store. */
async function pgStore(): Promise<{ extraToml: string; alsoCpuOf: number }> {
  pgCluster ??= await startPostgres();
  const url = await pgCluster.createDatabase(`bench_${++pgDatabases}`);
  const postmaster = Number(fs.readFileSync(path.join(pgCluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { extraToml: `[queue]\nstore = "${url}"\n`, alsoCpuOf: postmaster };
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

// ---- main ----

async function main(): Promise<void> {
  const started = Date.now();
  const missing = SETTINGS.systems.includes('postfix') ? postfixMissing() : 'not asked for (BENCH_SYSTEMS)';
  const systems = SETTINGS.systems.filter((s) => s !== 'postfix' || !missing);
  sayHeader(missing);
  const cells = await runRounds(systems);
  const postfixLine = postfixSettingsLine();
  if (postfixLine) say(postfixLine);

  const vs = verdicts(cells);
  const lost = cells.reduce((n, c) => n + c.lost, 0);
  sayCells(cells);
  sayVerdicts(vs, missing);
  say('\nDurability: every message counted here was acknowledged (250) only after fsync: smarthost writes the message into a queue file');
  say('whose name was fsynced into the queue directory ahead, and fdatasyncs it before replying; Postfix cleanup(8) fsyncs the queue file before smtpd replies');
  say('(Postfix defaults, unchanged by the bench).');
  say(`Messages lost (acknowledged, never at the sink after draining): ${lost}${lost ? '  <-- MUST BE 0' : ''}`);
  const trouble = troubleLines(cells);
  say(trouble.length ? `\nMail log trouble and leftovers:\n${trouble.join('\n')}` : '\nMail logs: no deferrals, bounces, warnings or errors; queues empty after draining.');
  say(`\ntotal ${f((Date.now() - started) / 1000, 0)}s, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(JSON.stringify({ bench: 'relay', node: process.version, cpus: os.cpus().length, clkTck: CLK_TCK, settings: SETTINGS, postfix: postfixSettingsSeen() ?? { skipped: missing }, cells, verdicts: vs, lost }));
}

/** What runs, with which settings, on which machine. */
function sayHeader(missing: string | undefined): void {
  say(`smarthost relay bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, CLK_TCK ${CLK_TCK}, ` +
    `${SETTINGS.seconds}s per cell after ${SETTINGS.warmupSeconds}s warm-up, drain until done or ${SETTINGS.drainIdleSeconds}s without progress (${SETTINGS.drainMaxSeconds}s at most)`);
  say(`smarthost [relay] concurrency ${SETTINGS.concurrency ?? 'default (20)'}, tls = "none", mail log on stdout (a pipe to the bench, as under systemd); ` +
    `daemon UV_THREADPOOL_SIZE ${SETTINGS.threadpool ?? 'not set by the bench'}, daemon node options: ${[...DAEMON_NODE_OPTIONS, process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || 'none'}`);
  say(`messages: ${SETTINGS.sizes.map(kb).join(' and ')} bodies as in the intake bench, each with an "${ID_HEADER}: n" line on top; one recipient`);
  if (missing) say(`Postfix comparison skipped: ${missing}`);
  if (SETTINGS.store === 'postgresql') say('smarthost queue store: PostgreSQL (private cluster on 127.0.0.1, fsync on, synchronous_commit on); CPU ms/msg includes the PostgreSQL server\'s');
}

/** Every cell (size x sessions) for every system, round after round. */
async function runRounds(systems: SystemName[]): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (let round = 1; round <= SETTINGS.rounds; round++) {
    for (const size of SETTINGS.sizes) {
      const message = wireMessage(size);
      for (const sessions of SETTINGS.sessions) {
        for (const name of systems) {
          const c = { ...(await measureCell((sinkPort) => startSystem(name, sinkPort), { sizeBytes: size, sessions, message }, SETTINGS)).cell, round };
          cells.push(c);
          process.stderr.write(`  round ${round}: ${name} ${kb(size)} x ${sessions}: ${f(c.e2ePerSecond, 0)} msg/s end to end (accepted ${f(c.acceptedPerSecond, 0)}/s), ` +
            `p99 ${f(c.p99Ms, 1)} ms, drain ${f(c.drainSeconds, 2)} s, lost ${c.lost}, other CPU ${f(c.otherCpuPct, 0)}%\n`);
        }
      }
    }
  }
  return cells;
}

/** The cells' table with what its columns mean. */
function sayCells(cells: Cell[]): void {
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
}

function sayVerdicts(vs: Verdict[], missing: string | undefined): void {
  if (!vs.length) {
    say(`\nsmarthost / Postfix: no comparison (${missing ?? 'no cells'})`);
    return;
  }
  say(`\nsmarthost / Postfix, medians of ${SETTINGS.rounds} round(s) (target: e2e msg/s ratio >= ${TARGET_RATIO} in every cell, nothing lost)`);
  say(table(['size', 'sessions', 'smarthost e2e msg/s', 'Postfix e2e msg/s', 'ratio', 'result', 'ratio per round', 'strict ratio', 'p99 ratio', 'CPU/msg ratio'],
    vs.map((v) => [kb(v.sizeBytes), String(v.sessions), f(v.smarthost, 0), f(v.postfix, 0), f(v.ratio, 2), v.pass ? 'PASS' : 'MISS',
      `${f(v.roundRatios[0], 2)}-${f(v.roundRatios[1], 2)}`, f(v.strictRatio, 2), f(v.p99Ratio, 2), f(v.cpuRatio, 2)])));
}

main().finally(async () => { await pgCluster?.stop(); removeTempDirs(); }).then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
