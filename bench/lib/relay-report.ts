// The relay bench's report: the cells' table with what its columns mean, and
// two verdicts over the medians of the rounds: smarthost against Postfix, and
// smarthost's PostgreSQL store (one and two nodes) against its file store.
import { median, type CellResult } from './relay-cell.js';
import type { SystemName } from './relay-systems.js';
import { f, kb, say, table } from './report.js';

export interface Cell extends CellResult { round: number }

/** The grid the cells cover and the rounds they ran. */
export interface Grid { readonly sizes: readonly number[]; readonly sessions: readonly number[]; readonly rounds: number }

const TARGET_RATIO = 2;
/** Issue 17: one node on the PostgreSQL store at least half the file store's end-to-end rate. */
const PG_TARGET_RATIO = 0.5;

type Figure = 'e2ePerSecond' | 'strictPerSecond' | 'acceptedPerSecond' | 'p99Ms' | 'cpuMsPerMsg' | 'daemonCpuMsPerMsg' | 'storeCpuMsPerMsg';
/** Median over the rounds; NaN when the system did not run. */
const med = (cs: Cell[], k: Figure): number => (cs.length ? median(cs.map((c) => c[k] ?? NaN)) : NaN);

/** Each (size, sessions) of the grid with a picker of its cells by system. */
function eachCell<T>(cells: Cell[], grid: Grid, fn: (of: (s: SystemName) => Cell[], sizeBytes: number, sessions: number) => T | undefined): T[] {
  const out: T[] = [];
  for (const size of grid.sizes) {
    for (const sessions of grid.sessions) {
      const v = fn((system) => cells.filter((c) => c.system === system && c.sizeBytes === size && c.sessions === sessions), size, sessions);
      if (v !== undefined) out.push(v);
    }
  }
  return out;
}

// ---- the cells ----

function cellTable(cells: Cell[]): string {
  return table(
    ['round', 'system', 'size', 'sessions', 'e2e msg/s', 'strict msg/s', 'accepted/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms/msg', 'daemon CPU ms/msg', 'PG CPU ms/msg',
      'CPU % in window', 'backlog start/end', 'drain s', 'acked', 'lost', 'dup', 'conns', 'reconnects', 'sent per node', 'sink CPU ms/msg', 'other CPU %'],
    cells.map((c) => [String(c.round), c.system, kb(c.sizeBytes), String(c.sessions), f(c.e2ePerSecond, 0), f(c.strictPerSecond, 0), f(c.acceptedPerSecond, 0),
      f(c.p50Ms, 1), f(c.p99Ms, 1), f(c.maxMs, 0), f(c.cpuMsPerMsg, 3), f(c.daemonCpuMsPerMsg, 3), f(c.storeCpuMsPerMsg, 3),
      f(c.windowCpuPct, 0), `${c.backlogAtStart}/${c.backlogAtEnd}`, f(c.drainSeconds, 2),
      String(c.acknowledged), String(c.lost), String(c.duplicates), String(c.connections), String(c.reconnects), c.sentPerNode.join('/'),
      f(c.sinkCpuMsPerMsg, 3), f(c.otherCpuPct, 0)]),
  );
}

/** The cells' table with what its columns mean. */
export function sayCells(cells: Cell[]): void {
  say('\nRelay, end to end: client -> system under test -> sink, all on 127.0.0.1, closed loop, fresh system and sink per cell.');
  say('  systems       = smarthost: queue files; smarthost-pg: queue in PostgreSQL; smarthost-pg2: two daemons on one PostgreSQL');
  say('                  queue, the sessions split evenly between their ports; postfix: a private Postfix.');
  say('  e2e msg/s     = messages arriving at the sink during the measured window, per second: the sustained end-to-end rate');
  say('                  under this load (the intake rate if the system keeps up, else its delivery rate while taking mail in).');
  say('  strict msg/s  = the same, counting only messages whose 250 came in the window: lower by about latency/window and by');
  say('                  the backlog at the window start (FIFO), so it mixes latency into throughput; shown for comparison.');
  say('  accepted/s    = 250s received in the window.');
  say('  p50/p99/max   = sink arrival (final dot) - client got its 250, window messages, one CLOCK_MONOTONIC clock, ms.');
  say('  CPU ms/msg    = utime+stime of the system from idle before the first connection until drained, / delivered;');
  say('                  smarthost: the daemon process(es), and for pg systems the PostgreSQL server (postmaster and all its');
  say('                  backends); Postfix: master + all its descendants, plus the master\'s cutime+cstime, which holds the CPU');
  say('                  of daemons that exited and were reaped (they come and go). daemon / PG CPU ms/msg: the two parts (pg only).');
  say('  CPU % in window = the same CPU during the window, % of one CPU.');
  say('  backlog       = 250 received but not at the sink yet, when the window opened/closed; drain s = load end -> last one at the sink.');
  say('  lost          = 250 received but never at the sink after draining; conns = connections the sink accepted;');
  say('  reconnects    = sessions the system ended with 421 at MAIL ([limits] messages_per_session) that went on in a new connection;');
  say('  sent per node = "status=sent" lines in each daemon\'s mail log (Postfix: its log);');
  say('  other CPU %   = machine busy outside system, sink and bench in the window, % of all CPUs: noise from other programs.');
  say(cellTable(cells));
}

// ---- smarthost / Postfix ----

export interface Verdict {
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
export function verdicts(cells: Cell[], grid: Grid): Verdict[] {
  return eachCell(cells, grid, (of, sizeBytes, sessions) => {
    const s = of('smarthost');
    const p = of('postfix');
    if (!s.length || !p.length) return undefined;
    const ratio = med(s, 'e2ePerSecond') / med(p, 'e2ePerSecond');
    const roundRatios = s.flatMap((c) => p.filter((q) => q.round === c.round).map((q) => c.e2ePerSecond / q.e2ePerSecond));
    return { sizeBytes, sessions, smarthost: med(s, 'e2ePerSecond'), postfix: med(p, 'e2ePerSecond'), ratio,
      roundRatios: [Math.min(...roundRatios), Math.max(...roundRatios)],
      strictRatio: med(s, 'strictPerSecond') / med(p, 'strictPerSecond'), p99Ratio: med(s, 'p99Ms') / med(p, 'p99Ms'),
      cpuRatio: med(s, 'cpuMsPerMsg') / med(p, 'cpuMsPerMsg'),
      pass: ratio >= TARGET_RATIO && s.every((c) => c.lost === 0) };
  });
}

export function sayVerdicts(vs: Verdict[], grid: Grid, missing: string | undefined): void {
  if (!vs.length) {
    say(`\nsmarthost / Postfix: no comparison (${missing ?? 'no cells'})`);
    return;
  }
  say(`\nsmarthost / Postfix, medians of ${grid.rounds} round(s) (target: e2e msg/s ratio >= ${TARGET_RATIO} in every cell, nothing lost)`);
  say(table(['size', 'sessions', 'smarthost e2e msg/s', 'Postfix e2e msg/s', 'ratio', 'result', 'ratio per round', 'strict ratio', 'p99 ratio', 'CPU/msg ratio'],
    vs.map((v) => [kb(v.sizeBytes), String(v.sessions), f(v.smarthost, 0), f(v.postfix, 0), f(v.ratio, 2), v.pass ? 'PASS' : 'MISS',
      `${f(v.roundRatios[0], 2)}-${f(v.roundRatios[1], 2)}`, f(v.strictRatio, 2), f(v.p99Ratio, 2), f(v.cpuRatio, 2)])));
}

// ---- PostgreSQL store / file store ----

interface PgFigures {
  /** medians: end-to-end and accepted msg/s, CPU ms/msg of the daemon(s) and of PostgreSQL */
  e2e: number; accepted: number; daemonCpuMsPerMsg: number; storeCpuMsPerMsg: number;
  lost: number;
  /** "status=sent" per daemon, summed over the rounds */
  sentPerNode: number[];
}

export interface StoreVerdict {
  sizeBytes: number; sessions: number;
  files: { e2e: number; accepted: number; lost: number };
  pg: PgFigures; pg2: PgFigures;
  /** pg / files e2e; pass: >= PG_TARGET_RATIO and pg lost nothing (undefined: not both ran) */
  pgRatio: number; pass: boolean | undefined;
  /** pg2 / pg e2e */
  pg2Ratio: number;
  /** every daemon of pg2 delivered some mail in every round (undefined: pg2 did not run) */
  bothNodesSent: boolean | undefined;
}

function pgFigures(cs: Cell[]): PgFigures {
  const sentPerNode: number[] = [];
  for (const c of cs) c.sentPerNode.forEach((n, i) => { sentPerNode[i] = (sentPerNode[i] ?? 0) + n; });
  return { e2e: med(cs, 'e2ePerSecond'), accepted: med(cs, 'acceptedPerSecond'), daemonCpuMsPerMsg: med(cs, 'daemonCpuMsPerMsg'),
    storeCpuMsPerMsg: med(cs, 'storeCpuMsPerMsg'), lost: cs.reduce((n, c) => n + c.lost, 0), sentPerNode };
}

export function storeVerdicts(cells: Cell[], grid: Grid): StoreVerdict[] {
  return eachCell(cells, grid, (of, sizeBytes, sessions) => {
    const [files, pg, pg2] = [of('smarthost'), of('smarthost-pg'), of('smarthost-pg2')];
    if (!pg.length && !pg2.length) return undefined;
    const p = pgFigures(pg);
    const p2 = pgFigures(pg2);
    const fileE2e = med(files, 'e2ePerSecond');
    const pgRatio = p.e2e / fileE2e;
    return {
      sizeBytes, sessions, pg: p, pg2: p2, pgRatio, pg2Ratio: p2.e2e / p.e2e,
      files: { e2e: fileE2e, accepted: med(files, 'acceptedPerSecond'), lost: files.reduce((n, c) => n + c.lost, 0) },
      pass: files.length && pg.length ? pgRatio >= PG_TARGET_RATIO && p.lost === 0 : undefined,
      bothNodesSent: pg2.length ? pg2.every((c) => c.sentPerNode.length === 2 && c.sentPerNode.every((n) => n > 0)) : undefined,
    };
  });
}

export function sayStoreVerdicts(vs: StoreVerdict[], grid: Grid, missing: string | undefined): void {
  if (!vs.length) {
    say(`\nPostgreSQL store / file store: no comparison (${missing ?? 'no cells'})`);
    return;
  }
  say(`\nPostgreSQL store / file store, medians of ${grid.rounds} round(s) (target: pg/files e2e msg/s >= ${PG_TARGET_RATIO}, one node, nothing lost);`);
  say('pg: one daemon, pg2: two daemons on one database; CPU ms/msg of the daemon(s) and of PostgreSQL; sent per node summed over the rounds');
  const yes = (b: boolean | undefined, y: string, n: string) => (b === undefined ? '-' : b ? y : n);
  say(table(['size', 'sessions', 'files e2e', 'pg e2e', 'pg/files', 'result', 'pg2 e2e', 'pg2/pg', 'files accepted/s', 'pg accepted/s', 'pg2 accepted/s',
    'pg daemon CPU', 'pg PG CPU', 'pg2 daemons CPU', 'pg2 PG CPU', 'lost files/pg/pg2', 'pg2 sent per node', 'both nodes sent'],
  vs.map((v) => [kb(v.sizeBytes), String(v.sessions), f(v.files.e2e, 0), f(v.pg.e2e, 0), f(v.pgRatio, 2), yes(v.pass, 'PASS', 'MISS'),
    f(v.pg2.e2e, 0), f(v.pg2Ratio, 2), f(v.files.accepted, 0), f(v.pg.accepted, 0), f(v.pg2.accepted, 0),
    f(v.pg.daemonCpuMsPerMsg, 3), f(v.pg.storeCpuMsPerMsg, 3), f(v.pg2.daemonCpuMsPerMsg, 3), f(v.pg2.storeCpuMsPerMsg, 3),
    `${v.files.lost}/${v.pg.lost}/${v.pg2.lost}`, v.pg2.sentPerNode.join('/') || '-', yes(v.bothNodesSent, 'yes', 'NO')])));
}
