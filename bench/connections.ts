// Connection-per-message benchmark: what real clients (cron jobs, PHP mail(),
// monitoring scripts) do. Each of N sessions loops: connect, 220, EHLO,
// [STARTTLS, full TLS handshake, EHLO, AUTH PLAIN,] MAIL/RCPT/DATA pipelined,
// body, 250, QUIT, 221, close. smarthost and, when it can run, Postfix, each
// fresh per cell and relaying to the counting sink; rounds interleave the
// systems (alternating which goes first) and the summary takes medians.
// A client-ceiling cell sends the same load straight to the sink, to show the
// load generator is not what limits the figures.
import os from 'node:os';
import { percentile, runLoad } from './lib/load.js';
import { wireMessage } from './lib/messages.js';
import { ID_HEADER, measureCell, median, troubleLines, type CellResult } from './lib/relay-cell.js';
import { postfixMissing, postfixSettingsLine, postfixSettingsSeen, startPostfix, startSmarthost, type Listener, type SystemName } from './lib/relay-systems.js';
import { CLK_TCK, DAEMON_NODE_OPTIONS, removeTempDirs } from './lib/servers.js';
import { startSink } from './lib/sink.js';
import { envList, envNumber } from './lib/env.js';
import { f, kb, say, table } from './lib/report.js';

// ---- settings (environment) ----

const CELL_KINDS = ['conn', 'tls', 'ceiling'] as const;
type CellKind = (typeof CELL_KINDS)[number];
const SETTINGS = {
  seconds: envNumber('BENCH_SECONDS', 5),
  /** Postfix forks smtpd processes as connections come: let it reach its steady state */
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 1.5),
  rounds: envNumber('BENCH_ROUNDS', 2),
  /** sessions of the one-message-per-connection cells */
  sessions: envList('BENCH_SESSIONS', [1, 10, 50]),
  sizes: envList('BENCH_SIZES', [1024, 100 * 1024]),
  tlsSessions: envNumber('BENCH_TLS_SESSIONS', 10),
  drainIdleSeconds: envNumber('BENCH_DRAIN_IDLE_SECONDS', 5),
  drainMaxSeconds: envNumber('BENCH_DRAIN_MAX_SECONDS', 30),
  /** "smarthost,postfix" by default; one name runs only that system */
  systems: (process.env.BENCH_SYSTEMS ?? 'smarthost,postfix').split(',') as SystemName[],
  /** conn: plain, one message per connection; tls: STARTTLS + AUTH per connection; ceiling: the client straight to the sink */
  cells: (process.env.BENCH_CELLS ?? CELL_KINDS.join(',')).split(',') as CellKind[],
};
const TLS_SIZE = 1024;
/** The CPU target's cell: 1 KB at 50 sessions. */
const CPU_CELL = { sizeBytes: 1024, sessions: 50, limitMs: 1.5 };

// ---- cells ----

interface Spec { readonly kind: 'conn' | 'tls'; readonly listener: Listener; readonly sizeBytes: number; readonly sessions: number }

const label = (s: Spec) => `${s.kind === 'tls' ? 'STARTTLS+AUTH/conn' : '1 msg/conn'} ${kb(s.sizeBytes)} x ${s.sessions}`;

function specs(): Spec[] {
  const out: Spec[] = [];
  if (SETTINGS.cells.includes('conn')) {
    for (const sizeBytes of SETTINGS.sizes) for (const sessions of SETTINGS.sessions) out.push({ kind: 'conn', listener: 'plain', sizeBytes, sessions });
  }
  if (SETTINGS.cells.includes('tls')) out.push({ kind: 'tls', listener: 'submission', sizeBytes: TLS_SIZE, sessions: SETTINGS.tlsSessions });
  return out;
}

interface Cell extends CellResult {
  round: number; cell: string;
  /** net.connect() -> 250 after the final dot, window messages */
  connectP50Ms: number; connectP99Ms: number;
  /** CPU of this load generator in the window: % of one CPU, and per accepted message */
  benchCpuPct: number; benchCpuMsPerMsg: number;
}

/** Window latencies (connect -> 250) of every run, by cell label and system: pooled over rounds for percentiles. */
const latencyPool = new Map<string, number[]>();

const messages = new Map<number, Buffer>();
const messageOf = (size: number): Buffer => {
  let m = messages.get(size);
  if (!m) messages.set(size, (m = wireMessage(size)));
  return m;
};

async function measure(system: SystemName, spec: Spec, round: number): Promise<Cell> {
  const start = (sinkPort: number) => (system === 'postfix' ? startPostfix(sinkPort, spec.listener) : startSmarthost(sinkPort, { listener: spec.listener }));
  const m = await measureCell(start, { sizeBytes: spec.sizeBytes, sessions: spec.sessions, message: messageOf(spec.sizeBytes), perConnection: true }, SETTINGS);
  const key = `${label(spec)}/${system}`;
  latencyPool.set(key, [...(latencyPool.get(key) ?? []), ...m.latencies]);
  return {
    ...m.cell, round, cell: label(spec),
    connectP50Ms: m.load.p50Ms, connectP99Ms: m.load.p99Ms,
    benchCpuPct: (100 * m.load.clientCpuMs) / (m.load.seconds * 1000),
    benchCpuMsPerMsg: m.load.clientCpuMs / Math.max(1, m.load.messages),
  };
}

interface Ceiling { sizeBytes: number; sessions: number; perSecond: number; connectP50Ms: number; connectP99Ms: number; benchCpuPct: number; benchCpuMsPerMsg: number }

/** The same client load sent straight to the sink (no system under test): what the load generator can offer. */
async function ceiling(sizeBytes: number, sessions: number): Promise<Ceiling> {
  const sink = await startSink();
  try {
    const r = await runLoad({
      port: sink.port, sessions, message: messageOf(sizeBytes), idHeader: ID_HEADER, perConnection: {},
      warmupMs: SETTINGS.warmupSeconds * 1000, measureMs: SETTINGS.seconds * 1000, onWindow: () => undefined,
    });
    return {
      sizeBytes, sessions, perSecond: r.perSecond, connectP50Ms: r.p50Ms, connectP99Ms: r.p99Ms,
      benchCpuPct: (100 * r.clientCpuMs) / (r.seconds * 1000), benchCpuMsPerMsg: r.clientCpuMs / Math.max(1, r.messages),
    };
  } finally {
    await sink.stop();
  }
}

// ---- verdicts ----

interface Verdict {
  cell: string; unit: string; postfix: number; smarthost: number;
  /** smarthost / Postfix */
  ratio: number; target: string; pass: boolean | undefined;
}

const pooledPercentile = (key: string, q: number): number => percentile(Float64Array.from(latencyPool.get(key) ?? []).sort(), q);

function verdicts(cells: Cell[], all: Spec[]): Verdict[] {
  const out: Verdict[] = [];
  const of = (spec: Spec, system: SystemName) => cells.filter((c) => c.cell === label(spec) && c.system === system);
  for (const spec of all) {
    const s = of(spec, 'smarthost');
    const p = of(spec, 'postfix');
    if (!s.length || !p.length) continue;
    const sm = median(s.map((c) => c.e2ePerSecond));
    const pm = median(p.map((c) => c.e2ePerSecond));
    const need = spec.kind === 'tls' ? 1.5 : spec.sessions === 1 ? 1 : 2;
    out.push({ cell: label(spec), unit: 'e2e msg/s', postfix: pm, smarthost: sm, ratio: sm / pm, target: `ratio >= ${need}`,
      pass: sm / pm >= need && s.every((c) => c.lost === 0) });
  }
  for (const spec of all) {
    if (spec.kind !== 'conn' || spec.sessions !== 1) continue;
    const sKey = `${label(spec)}/smarthost`;
    const pKey = `${label(spec)}/postfix`;
    if (!latencyPool.has(sKey) || !latencyPool.has(pKey)) continue;
    for (const [q, need] of [[0.5, 1], [0.99, 2]] as const) {
      const sv = pooledPercentile(sKey, q);
      const pv = pooledPercentile(pKey, q);
      out.push({ cell: `connect->250 p${q * 100}, ${kb(spec.sizeBytes)}, 1 session`, unit: 'ms', postfix: pv, smarthost: sv, ratio: sv / pv,
        target: `ratio <= ${need}`, pass: sv / pv <= need });
    }
  }
  const cpuSpec = all.find((x) => x.kind === 'conn' && x.sizeBytes === CPU_CELL.sizeBytes && x.sessions === CPU_CELL.sessions);
  if (cpuSpec) {
    const s = of(cpuSpec, 'smarthost');
    const p = of(cpuSpec, 'postfix');
    if (s.length) {
      const sv = median(s.map((c) => c.cpuMsPerMsg));
      const pv = p.length ? median(p.map((c) => c.cpuMsPerMsg)) : NaN;
      out.push({ cell: `CPU per message, ${label(cpuSpec)}`, unit: 'ms/msg', postfix: pv, smarthost: sv, ratio: sv / pv,
        target: `smarthost <= ${CPU_CELL.limitMs}`, pass: sv <= CPU_CELL.limitMs });
    }
  }
  return out;
}

// ---- report ----

function cellTable(cells: Cell[]): string {
  return table(
    ['cell', 'system', 'round', 'e2e msg/s', 'accepted/s', 'conn->250 p50', 'p99 ms', 'to sink p99 ms', 'CPU ms/msg', 'CPU % in window',
      'bench CPU %', 'bench CPU ms/msg', 'acked', 'lost', 'dup', 'sink conns', 'other CPU %'],
    cells.map((c) => [c.cell, c.system, String(c.round), f(c.e2ePerSecond, 0), f(c.acceptedPerSecond, 0), f(c.connectP50Ms, 1), f(c.connectP99Ms, 1),
      f(c.p99Ms, 1), f(c.cpuMsPerMsg, 3), f(c.windowCpuPct, 0), f(c.benchCpuPct, 0), f(c.benchCpuMsPerMsg, 3),
      String(c.acknowledged), String(c.lost), String(c.duplicates), String(c.connections), f(c.otherCpuPct, 0)]),
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  const missing = SETTINGS.systems.includes('postfix') ? postfixMissing() : 'not asked for (BENCH_SYSTEMS)';
  const systems = SETTINGS.systems.filter((s) => s !== 'postfix' || !missing);
  sayHeader(missing);
  const all = specs();
  const cells = await runRounds(systems, all);
  const ceilings = SETTINGS.cells.includes('ceiling') ? await runCeilings() : [];
  const postfixLine = postfixSettingsLine();
  if (postfixLine) say(postfixLine);
  sayCells(cells, ceilings);
  const vs = verdicts(cells, all);
  sayVerdicts(vs, missing);
  const lost = cells.reduce((n, c) => n + c.lost, 0);
  say(`\nMessages lost (acknowledged, never at the sink after draining): ${lost}${lost ? '  <-- MUST BE 0' : ''}`);
  const trouble = troubleLines(cells, (c) => `${c.system} ${c.cell} (round ${c.round})`);
  say(trouble.length ? `\nMail log trouble and leftovers:\n${trouble.join('\n')}` : '\nMail logs: no deferrals, bounces, warnings or errors; queues empty after draining.');
  say(`\ntotal ${f((Date.now() - started) / 1000, 0)}s, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(JSON.stringify({
    bench: 'connections', date: new Date(started).toISOString(), node: process.version, cpus: os.cpus().length, clkTck: CLK_TCK, settings: SETTINGS,
    postfix: postfixSettingsSeen() ?? { skipped: missing }, cells, ceilings, verdicts: vs, lost,
  }));
}

/** What runs, with which settings, on which machine. */
function sayHeader(missing: string | undefined): void {
  say(`smarthost connections bench, ${new Date().toISOString()}: node ${process.version}, ${os.cpus().length} CPUs, ` +
    `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, CLK_TCK ${CLK_TCK}, ${SETTINGS.rounds} round(s), ` +
    `${SETTINGS.seconds}s per cell after ${SETTINGS.warmupSeconds}s warm-up, drain until done or ${SETTINGS.drainIdleSeconds}s without progress`);
  say(`smarthost: defaults, [relay] tls = "none", daemon node options: ${[...DAEMON_NODE_OPTIONS, process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || 'none'}; ` +
    'STARTTLS cells: a listener with tls = "starttls-required", auth = "required", a users file from `smarthost user add`, ' +
    'an EC P-256 certificate; Postfix: its submission port (smtpd_tls_security_level=encrypt, SASL via sasldb) with the same kind of certificate');
  say(`messages: ${SETTINGS.sizes.map(kb).join(' and ')} as in the relay bench, each with an "${ID_HEADER}: n" line on top; one recipient; ` +
    'TLS: full handshake on every connection (no session resumption), certificate not checked');
  if (missing) say(`Postfix comparison skipped: ${missing}`);
}

/** Every cell for every system, round after round; who goes first alternates, as the machine's speed drifts. */
async function runRounds(systems: SystemName[], all: Spec[]): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (let round = 1; round <= SETTINGS.rounds; round++) {
    const order = round % 2 ? systems : [...systems].reverse();
    for (const spec of all) {
      for (const name of order) {
        const c = await measure(name, spec, round);
        cells.push(c);
        process.stderr.write(`  round ${round}: ${name} ${c.cell}: ${f(c.e2ePerSecond, 0)} msg/s end to end (accepted ${f(c.acceptedPerSecond, 0)}/s), ` +
          `connect->250 p50 ${f(c.connectP50Ms, 1)} p99 ${f(c.connectP99Ms, 1)} ms, CPU ${f(c.cpuMsPerMsg, 2)} ms/msg, bench CPU ${f(c.benchCpuPct, 0)}%, lost ${c.lost}\n`);
      }
    }
  }
  return cells;
}

/** The client-ceiling cells: each size at the most sessions. */
async function runCeilings(): Promise<Ceiling[]> {
  const ceilings: Ceiling[] = [];
  const sessions = Math.max(...SETTINGS.sessions);
  for (const size of SETTINGS.sizes) {
    const c = await ceiling(size, sessions);
    ceilings.push(c);
    process.stderr.write(`  ceiling: client -> sink ${kb(size)} x ${sessions}: ${f(c.perSecond, 0)} msg/s, bench CPU ${f(c.benchCpuPct, 0)}%\n`);
  }
  return ceilings;
}

/** The cells' table with what its columns mean, then the ceilings'. */
function sayCells(cells: Cell[], ceilings: Ceiling[]): void {
  say('\nOne message per connection, end to end: client -> system under test -> sink, all on 127.0.0.1, fresh system and sink per cell.');
  say('  e2e msg/s      = messages arriving at the sink during the measured window, per second; accepted/s = 250s in the window.');
  say('  conn->250      = from net.connect() to the 250 after the final dot (TCP connect, greeting, EHLO, [STARTTLS, TLS, EHLO, AUTH,] DATA), ms.');
  say('  to sink p99    = sink arrival - client got its 250, ms.');
  say('  CPU ms/msg     = CPU of the system\'s process tree from idle until drained, / delivered (smarthost: the daemon; Postfix: master,');
  say('                   its children and the reaped ones); CPU % in window = the same in the window, % of one CPU.');
  say('  bench CPU      = this load generator (one node process) in the window: near 100% it would be the limit, not the system.');
  say('  lost           = 250 received but never at the sink after draining; other CPU % = the rest of the machine, % of all CPUs.');
  say(cellTable(cells));
  if (!ceilings.length) return;
  say('\nLoad generator ceiling: the same one-message-per-connection load straight to the sink (no system under test).');
  say(table(['size', 'sessions', 'msg/s', 'conn->250 p50 ms', 'p99 ms', 'bench CPU %', 'bench CPU ms/msg'],
    ceilings.map((c) => [kb(c.sizeBytes), String(c.sessions), f(c.perSecond, 0), f(c.connectP50Ms, 1), f(c.connectP99Ms, 1), f(c.benchCpuPct, 0), f(c.benchCpuMsPerMsg, 3)])));
}

function sayVerdicts(vs: Verdict[], missing: string | undefined): void {
  if (!vs.length) {
    say(`\nsmarthost vs Postfix: no comparison (${missing ?? 'no cells'})`);
    return;
  }
  say(`\nsmarthost vs Postfix, medians of ${SETTINGS.rounds} round(s); latency percentiles over all rounds' window messages (targets are figures, not assertions)`);
  say(table(['cell', 'unit', 'Postfix', 'smarthost', 'smarthost/Postfix', 'target', 'result'],
    vs.map((v) => [v.cell, v.unit, f(v.postfix, v.unit === 'e2e msg/s' ? 0 : 2), f(v.smarthost, v.unit === 'e2e msg/s' ? 0 : 2), f(v.ratio, 2), v.target,
      v.pass === undefined ? 'n/a' : v.pass ? 'PASS' : 'MISS'])));
}

main().finally(removeTempDirs).then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
