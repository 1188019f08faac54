// End-to-end relay benchmark: N closed-loop client sessions -> system under
// test on 127.0.0.1 -> counting sink (bench/sink-server.ts, its own process).
// Systems (all fsync before 250): smarthost with its file store, with its queue
// in PostgreSQL (one daemon, and two daemons on one database), and Postfix;
// the PostgreSQL ones and Postfix when they can run here. Each cell (sessions
// x size) runs on a fresh instance and sink: warm-up, a measured window, then
// the queue drains; all cells again for each of BENCH_ROUNDS rounds, and the
// verdicts compare medians. Reports end-to-end msg/s, enqueue-to-delivered
// latency (sink arrival - client's 250), CPU ms/msg of the system's process
// tree (and PostgreSQL's apart), lost messages, smarthost/Postfix per cell
// against the 2x target and the PostgreSQL store against the file store.
import os from 'node:os';
import { wireMessage } from './lib/messages.js';
import { ID_HEADER, measureCell, troubleLines } from './lib/relay-cell.js';
import { postfixMissing, postfixSettingsLine, postfixSettingsSeen, startPostfix, startSmarthost, type RelaySystem, type SystemName } from './lib/relay-systems.js';
import { postgresMissing, startSmarthostPg, stopPostgres } from './lib/pg-systems.js';
import { sayCells, sayStoreVerdicts, sayVerdicts, storeVerdicts, verdicts, type Cell } from './lib/relay-report.js';
import { CLK_TCK, DAEMON_NODE_OPTIONS, removeTempDirs } from './lib/servers.js';
import { envList, envNumber } from './lib/env.js';
import { f, kb, say } from './lib/report.js';

// ---- settings (environment) ----

const ALL_SYSTEMS: readonly SystemName[] = ['smarthost', 'smarthost-pg', 'smarthost-pg2', 'postfix'];

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
  /** all four by default (those that cannot run here are skipped, with the reason); a list runs only those */
  systems: (process.env.BENCH_SYSTEMS ?? ALL_SYSTEMS.join(',')).split(',') as SystemName[],
};

// ---- one cell ----

async function startSystem(name: SystemName, sinkPort: number): Promise<RelaySystem> {
  if (name === 'postfix') return startPostfix(sinkPort);
  const o = {
    env: SETTINGS.threadpool ? { UV_THREADPOOL_SIZE: SETTINGS.threadpool } : {},
    ...(SETTINGS.concurrency ? { concurrency: SETTINGS.concurrency } : {}),
  };
  if (name === 'smarthost') return startSmarthost(sinkPort, o);
  return startSmarthostPg(sinkPort, name === 'smarthost-pg' ? 1 : 2, o);
}

/** Why each asked-for system cannot run here; the others run. */
function skipped(): Map<SystemName, string> {
  const out = new Map<SystemName, string>();
  for (const name of SETTINGS.systems) {
    if (!ALL_SYSTEMS.includes(name)) throw new Error(`BENCH_SYSTEMS: unknown system "${name}" (known: ${ALL_SYSTEMS.join(', ')})`);
    const why = name === 'postfix' ? postfixMissing() : name.startsWith('smarthost-pg') ? postgresMissing() : undefined;
    if (why) out.set(name, why);
  }
  return out;
}

// ---- main ----

async function main(): Promise<void> {
  const started = Date.now();
  const skip = skipped();
  const systems = SETTINGS.systems.filter((s) => !skip.has(s));
  const missing = SETTINGS.systems.includes('postfix') ? skip.get('postfix') : 'not asked for (BENCH_SYSTEMS)';
  const pgMissing = SETTINGS.systems.some((s) => s.startsWith('smarthost-pg')) ? skip.get('smarthost-pg') ?? skip.get('smarthost-pg2') : 'not asked for (BENCH_SYSTEMS)';
  sayHeader(skip);
  const cells = await runRounds(systems);
  const postfixLine = postfixSettingsLine();
  if (postfixLine) say(postfixLine);

  const grid = { sizes: SETTINGS.sizes, sessions: SETTINGS.sessions, rounds: SETTINGS.rounds };
  const vs = verdicts(cells, grid);
  const svs = storeVerdicts(cells, grid);
  const lost = cells.reduce((n, c) => n + c.lost, 0);
  sayCells(cells);
  sayVerdicts(vs, grid, missing);
  sayStoreVerdicts(svs, grid, pgMissing);
  sayDurability(lost);
  const trouble = troubleLines(cells);
  say(trouble.length ? `\nMail log trouble and leftovers:\n${trouble.join('\n')}` : '\nMail logs: no deferrals, bounces, warnings or errors; queues empty after draining.');
  say(`\ntotal ${f((Date.now() - started) / 1000, 0)}s, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(JSON.stringify({ bench: 'relay', node: process.version, cpus: os.cpus().length, clkTck: CLK_TCK, settings: SETTINGS, skipped: Object.fromEntries(skip),
    postfix: postfixSettingsSeen() ?? { skipped: missing }, cells, verdicts: vs, storeVerdicts: svs, lost }));
}

function sayDurability(lost: number): void {
  say('\nDurability: every message counted here was acknowledged (250) only after fsync: smarthost writes the message into a queue file');
  say('whose name was fsynced into the queue directory ahead, and fdatasyncs it before replying; on PostgreSQL it replies after the COMMIT');
  say('that stored the message (fsync on, synchronous_commit on); Postfix cleanup(8) fsyncs the queue file before smtpd replies');
  say('(Postfix defaults, unchanged by the bench).');
  say(`Messages lost (acknowledged, never at the sink after draining): ${lost}${lost ? '  <-- MUST BE 0' : ''}`);
}

/** What runs, with which settings, on which machine. */
function sayHeader(skip: Map<SystemName, string>): void {
  say(`smarthost relay bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, CLK_TCK ${CLK_TCK}, ` +
    `${SETTINGS.seconds}s per cell after ${SETTINGS.warmupSeconds}s warm-up, drain until done or ${SETTINGS.drainIdleSeconds}s without progress (${SETTINGS.drainMaxSeconds}s at most)`);
  say(`smarthost [relay] concurrency ${SETTINGS.concurrency ?? 'default (20)'}, tls = "none", mail log on stdout (a pipe to the bench, as under systemd); ` +
    `daemon UV_THREADPOOL_SIZE ${SETTINGS.threadpool ?? 'not set by the bench'}, daemon node options: ${[...DAEMON_NODE_OPTIONS, process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || 'none'}`);
  say(`messages: ${SETTINGS.sizes.map(kb).join(' and ')} bodies as in the intake bench, each with an "${ID_HEADER}: n" line on top; one recipient`);
  say(`systems: ${SETTINGS.systems.filter((s) => !skip.has(s)).join(', ') || 'none'}`);
  for (const [name, why] of skip) say(`${name} skipped: ${why}`);
  if (SETTINGS.systems.some((s) => s.startsWith('smarthost-pg') && !skip.has(s))) {
    say('smarthost-pg/-pg2 queue: a fresh database per cell in one private PostgreSQL 127.0.0.1 cluster per run (fsync on, synchronous_commit on); ' +
      'pg2: two daemons (node_name bench-1, bench-2) on that database, sessions split evenly between their ports');
  }
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
            `p99 ${f(c.p99Ms, 1)} ms, drain ${f(c.drainSeconds, 2)} s, lost ${c.lost}, reconnects ${c.reconnects}, sent per node ${c.sentPerNode.join('/')}, ` +
            `other CPU ${f(c.otherCpuPct, 0)}%\n`);
        }
      }
    }
  }
  return cells;
}

main().finally(async () => { await stopPostgres(); removeTempDirs(); }).then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
