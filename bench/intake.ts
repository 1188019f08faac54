// Intake benchmark: how fast smarthost takes mail into its durable spool.
// For 1/10/50 concurrent SMTP sessions x 1 KB/100 KB messages it runs a cheap
// in-process raw-socket load against a fresh daemon child and against a bare
// smtp-server child (no disk), reporting msg/s, p50/p99 latency (final dot ->
// 250), daemon CPU ms/msg and peak RSS, plus RSS with 1,000 idle sessions and
// the disk's one-fsync-at-a-time ceiling. Prints tables, then one JSON line.
// It measures intake alone, as the issue asks: smarthost runs with [queue]
// defer_delivery = true, so what it accepts stays in the spool, and the check
// at the end of each run is that every acknowledged message is there. One more
// paced run shows the same load while the daemon also relays every message to
// a counting sink (a separate process) on the same 2 cores, as in service.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fsyncCeiling, type FsyncCeiling } from './lib/fsync.js';
import { openSessions, runLoad } from './lib/load.js';
import { wireMessage } from './lib/messages.js';
import { startSink, type Sink } from './lib/sink.js';
import { CLK_TCK, DAEMON_NODE_OPTIONS, cpuMs, machineBusyMs, memMB, removeTempDirs, spooledFiles, startServer, tempDir, type ServerKind } from './lib/servers.js';
import { envList, envNumber } from './lib/env.js';
import { f, kb, say, table } from './lib/report.js';

// ---- settings (environment) ----

const SETTINGS = {
  seconds: envNumber('BENCH_SECONDS', 5),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 1),
  sessions: envList('BENCH_SESSIONS', [1, 10, 50]),
  sizes: envList('BENCH_SIZES', [1024, 100 * 1024]),
  idleSessions: envNumber('BENCH_IDLE', 1000),
  /** total msg/s offered by 50 paced sessions of 1 KB (the target rate); 0: skip */
  pacedRate: envNumber('BENCH_PACED_RATE', 2000),
  /**
   * The paced cell measures latency in steady state. For its first 2-3 seconds under load a
   * fresh daemon is slow (its code not yet optimised): nearly every message took over 10 ms,
   * while the same daemon loaded again after 10 s idle was fast from the first second.
   */
  pacedWarmupSeconds: envNumber('BENCH_PACED_WARMUP_SECONDS', 3),
  /**
   * Quiet seconds before measuring: on ext4 without a journal, creating a file is slow while
   * many inodes freed in the last 30 s are about (a previous run's cleanup removes ~70,000 files).
   */
  settleSeconds: envNumber('BENCH_SETTLE_SECONDS', 30),
  /** UV_THREADPOOL_SIZE for the daemon; unset: Node's default (4) */
  threadpool: process.env.BENCH_THREADPOOL,
};
const KINDS: ServerKind[] = ['smarthost', 'baseline'];
const daemonEnv = SETTINGS.threadpool ? { UV_THREADPOOL_SIZE: SETTINGS.threadpool } : {};

// ---- measurements ----

interface Run {
  server: ServerKind; sizeBytes: number; sessions: number;
  messages: number; perSecond: number; p50Ms: number; p99Ms: number;
  cpuMsPerMsg: number; peakRssMB: number; clientCpuMsPerMsg: number;
  /** busy CPU of the machine outside the server and the bench, % of all CPUs: noise */
  otherCpuPct: number;
  acknowledged: number; spooled?: number;
  /** paced runs: the msg/s offered */
  offered?: number;
  /** smarthost also relayed every message to a sink (else delivery was deferred: intake alone) */
  relaying?: boolean;
}

async function measureLoad(kind: ServerKind, sizeBytes: number, sessions: number, message: Buffer,
  opts: { offered?: number; warmupSeconds?: number; relaying?: boolean } = {}): Promise<Run> {
  const { offered, warmupSeconds = SETTINGS.warmupSeconds } = opts;
  const relaying = kind === 'smarthost' && opts.relaying === true;
  const sink: Sink | undefined = relaying ? await startSink() : undefined;
  const toml = sink ? `[relay]\nurl = "smtp://127.0.0.1:${sink.port}"\ntls = "none"\n` : '[queue]\ndefer_delivery = true\n';
  const server = await startServer(kind, daemonEnv, kind === 'smarthost' ? { toml } : {});
  try {
    const edges = { start: { server: 0, machine: 0 }, end: { server: 0, machine: 0 } };
    const r = await runLoad({
      port: server.port, sessions, message,
      ...(offered ? { ratePerSession: offered / sessions } : {}),
      warmupMs: warmupSeconds * 1000, measureMs: SETTINGS.seconds * 1000,
      onWindow: (edge) => { edges[edge] = { server: cpuMs(server.pid), machine: machineBusyMs() }; },
    });
    const serverCpu = edges.end.server - edges.start.server;
    const otherCpu = edges.end.machine - edges.start.machine - serverCpu - r.clientCpuMs;
    const perMsg = (ms: number) => ms / Math.max(1, r.messages);
    const run: Run = {
      server: kind, sizeBytes, sessions,
      messages: r.messages, perSecond: r.perSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms,
      cpuMsPerMsg: perMsg(serverCpu), peakRssMB: memMB(server.pid, 'VmHWM'), clientCpuMsPerMsg: perMsg(r.clientCpuMs),
      otherCpuPct: Math.max(0, (100 * otherCpu) / (r.seconds * 1000 * os.cpus().length)),
      acknowledged: r.acknowledged,
      ...(offered ? { offered } : {}),
      ...(relaying ? { relaying } : {}),
    };
    if (kind === 'smarthost' && !sink) run.spooled = spooledFiles(server); // delivery deferred: all of it is still queued
    if (sink) {
      // let the queue drain, then count what reached the sink plus what is still queued
      for (let i = 0; i < 300 && spooledFiles(server) > 0; i++) await sleep(100);
      // the sink reports arrivals in batches: wait until its count stops moving
      for (let last = -1, i = 0; i < 50 && sink.other() !== last; i++) { last = sink.other(); await sleep(200); }
      run.spooled = spooledFiles(server) + sink.other();
    }
    return run;
  } finally {
    await server.stop();
    await sink?.stop();
  }
}

interface Idle { server: ServerKind; sessions: number; rssBeforeMB: number; rssMB: number; perSessionKB: number }

async function measureIdle(kind: ServerKind, n: number): Promise<Idle> {
  const server = await startServer(kind, daemonEnv);
  try {
    await sleep(300);
    const rssBeforeMB = memMB(server.pid, 'VmRSS');
    const clients = await openSessions(server.port, n);
    try {
      await sleep(500);
      const rssMB = memMB(server.pid, 'VmRSS');
      return { server: kind, sessions: n, rssBeforeMB, rssMB, perSessionKB: ((rssMB - rssBeforeMB) * 1024) / n };
    } finally {
      clients.forEach((c) => c.destroy());
    }
  } finally {
    await server.stop();
  }
}

function measureFsync(): { rename: FsyncCeiling; renameDirSync: FsyncCeiling } {
  const dir = tempDir('smarthost-bench-fsync-');
  const ms = Math.min(2000, SETTINGS.seconds * 400);
  return { rename: fsyncCeiling(dir, ms, false), renameDirSync: fsyncCeiling(dir, ms, true) };
}

// ---- report ----


function loadTable(runs: Run[]): string {
  return table(
    ['server', 'size', 'sessions', 'messages', 'msg/s', 'p50 ms', 'p99 ms', 'CPU ms/msg', 'peak RSS MB', 'client CPU ms/msg', 'other CPU %'],
    runs.map((r) => [r.server + (r.relaying ? ' + relaying' : ''), kb(r.sizeBytes), String(r.sessions), String(r.messages), f(r.perSecond, 0), f(r.p50Ms, 2), f(r.p99Ms, 2),
      f(r.cpuMsPerMsg, 3), f(r.peakRssMB), f(r.clientCpuMsPerMsg, 3), f(r.otherCpuPct, 0)]),
  );
}

interface Ratio { sizeBytes: number; sessions: number; perSecond: number; p50: number; p99: number; cpuPerMsg: number }

function ratios(runs: Run[]): Ratio[] {
  const out: Ratio[] = [];
  for (const s of runs.filter((r) => r.server === 'smarthost')) {
    const b = runs.find((r) => r.server === 'baseline' && r.sizeBytes === s.sizeBytes && r.sessions === s.sessions);
    if (!b) continue;
    out.push({ sizeBytes: s.sizeBytes, sessions: s.sessions, perSecond: s.perSecond / b.perSecond,
      p50: s.p50Ms / b.p50Ms, p99: s.p99Ms / b.p99Ms, cpuPerMsg: s.cpuMsPerMsg / b.cpuMsPerMsg });
  }
  return out;
}

function ratioTable(rs: Ratio[]): string {
  return table(['size', 'sessions', 'msg/s ratio', 'p50 ratio', 'p99 ratio', 'CPU/msg ratio'],
    rs.map((r) => [kb(r.sizeBytes), String(r.sessions), f(r.perSecond, 2), f(r.p50, 2), f(r.p99, 2), f(r.cpuPerMsg, 2)]));
}

interface Target { name: string; value: number | undefined; limit: string; pass: boolean | undefined }

function targets(runs: Run[], paced: Run[], idle: Idle[]): Target[] {
  const hot = runs.find((r) => r.server === 'smarthost' && r.sizeBytes === 1024 && r.sessions === 50);
  const steady = paced.find((r) => r.server === 'smarthost' && !r.relaying);
  const relaying = paced.find((r) => r.relaying);
  const idleRss = idle.find((i) => i.server === 'smarthost' && i.sessions === 1000)?.rssMB;
  const check = (v: number | undefined, ok: (v: number) => boolean) => (v === undefined ? undefined : ok(v));
  return [
    { name: 'msg/s, 50 sessions, 1 KB', value: hot?.perSecond, limit: '>= 2000', pass: check(hot?.perSecond, (v) => v >= 2000) },
    { name: `p99 ms, 50 sessions, 1 KB, ${steady?.offered ?? SETTINGS.pacedRate} msg/s offered`, value: steady?.p99Ms, limit: '< 10', pass: check(steady?.p99Ms, (v) => v < 10) },
    { name: `  and it kept up: msg/s`, value: steady?.perSecond, limit: `>= ${f((steady?.offered ?? 0) * 0.98, 0)}`, pass: steady && check(steady.perSecond, (v) => v >= steady.offered! * 0.98) },
    // Saturated at well over 2,000 msg/s, each session waits for the others: by Little's law the
    // mean alone is 50 / msg/s (9.4 ms at 5,300 msg/s), so p99 there measures the queue, not intake.
    { name: 'p99 ms, 50 sessions, 1 KB, closed loop (saturated: mean = 50 / msg/s; shown)', value: hot?.p99Ms, limit: '(shown)', pass: undefined },
    { name: `p99 ms, the paced load while also relaying every message (in service; not the issue's target)`, value: relaying?.p99Ms, limit: '(shown)', pass: undefined },
    { name: 'RSS MB, 1000 idle sessions', value: idleRss, limit: '< 150', pass: check(idleRss, (v) => v < 150) },
  ];
}

function spoolWarnings(runs: Run[]): string[] {
  return runs.filter((r) => r.spooled !== undefined && r.spooled < r.acknowledged)
    .map((r) => `WARNING: ${kb(r.sizeBytes)} x ${r.sessions}: ${r.acknowledged} messages got 250 but ${r.spooled} ${r.relaying ? 'were delivered or are still queued' : 'are in the queue'}`);
}

// ---- main ----

async function main(): Promise<void> {
  const started = Date.now();
  say(`smarthost intake bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, CLK_TCK ${CLK_TCK}, ` +
    `${SETTINGS.seconds}s per run after ${SETTINGS.warmupSeconds}s warm-up, daemon UV_THREADPOOL_SIZE ${SETTINGS.threadpool ?? 'not set by the bench'}, daemon node options: ${[...DAEMON_NODE_OPTIONS, process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || 'none'}`);

  if (SETTINGS.settleSeconds > 0) {
    process.stderr.write(`  waiting ${SETTINGS.settleSeconds}s for the disk to settle (BENCH_SETTLE_SECONDS)\n`);
    execFileSync('sync');
    await sleep(SETTINGS.settleSeconds * 1000);
  }
  const fsync = measureFsync();
  // The paced cells first: after the closed loop's 100 KB runs have written a few GB, the disk's
  // flushes stay slow for a while (p99 12 ms instead of 3-8 ms in back-to-back runs of this cell).
  const paced = SETTINGS.pacedRate > 0 ? await runPaced() : [];
  const runs = await runClosedLoop();
  const idle: Idle[] = [];
  if (SETTINGS.idleSessions > 0) for (const kind of KINDS) idle.push(await measureIdle(kind, SETTINGS.idleSessions));

  const rs = ratios(runs);
  const ts = targets(runs, paced, idle);
  sayLoads(runs, paced);
  say('\nsmarthost / baseline (msg/s: higher is better for smarthost above 1; latency, CPU: lower is better below 1)');
  say(ratioTable(rs));
  say(`\nIdle sessions (connected, greeted, EHLO done)`);
  say(table(['server', 'sessions', 'RSS before MB', 'RSS MB', 'KB/session'],
    idle.map((i) => [i.server, String(i.sessions), f(i.rssBeforeMB), f(i.rssMB), f(i.perSessionKB)])));
  say(`\nDisk commit ceiling, single writer, 1 KB files in ${os.tmpdir()}:`);
  say(`  fdatasync + rename:             ${f(fsync.rename.perSecond, 0)}/s (${f(fsync.rename.meanMs, 2)} ms each)`);
  say(`  fdatasync + rename + dir fsync: ${f(fsync.renameDirSync.perSecond, 0)}/s (${f(fsync.renameDirSync.meanMs, 2)} ms each)`);
  say('\nTargets');
  say(table(['target', 'limit', 'value', 'result'],
    ts.map((t) => [t.name, t.limit, f(t.value, 1), t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : 'MISS'])));
  say(`\ntotal ${f((Date.now() - started) / 1000, 0)}s, load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(JSON.stringify({
    bench: 'intake', node: process.version, cpus: os.cpus().length, clkTck: CLK_TCK, settings: SETTINGS,
    runs, paced, ratios: rs, idle, fsync, targets: ts,
  }));
}

/** 1 KB x 50 sessions at the offered rate: each server, then smarthost while it also relays. */
async function runPaced(): Promise<Run[]> {
  const paced: Run[] = [];
  const pacedRun = async (kind: ServerKind, relaying = false) => {
    const r = await measureLoad(kind, 1024, 50, wireMessage(1024), { offered: SETTINGS.pacedRate, warmupSeconds: SETTINGS.pacedWarmupSeconds, relaying });
    paced.push(r);
    process.stderr.write(`  ${kind}${relaying ? ' + relaying' : ''} 1 KB x 50 paced at ${SETTINGS.pacedRate}/s: ${f(r.perSecond, 0)} msg/s, p99 ${f(r.p99Ms, 2)} ms\n`);
  };
  for (const kind of KINDS) await pacedRun(kind);
  await pacedRun('smarthost', true);
  return paced;
}

/** Every size x sessions cell, closed loop, for each server. */
async function runClosedLoop(): Promise<Run[]> {
  const runs: Run[] = [];
  for (const size of SETTINGS.sizes) {
    const message = wireMessage(size);
    for (const sessions of SETTINGS.sessions) {
      for (const kind of KINDS) {
        const r = await measureLoad(kind, size, sessions, message);
        runs.push(r);
        process.stderr.write(`  ${kind} ${kb(size)} x ${sessions}: ${f(r.perSecond, 0)} msg/s, p99 ${f(r.p99Ms, 2)} ms\n`);
      }
    }
  }
  return runs;
}

/** The closed-loop and the paced tables, with what they measure. */
function sayLoads(runs: Run[], paced: Run[]): void {
  say('\nIntake alone (smarthost with [queue] defer_delivery = true: accepted mail stays in the spool)');
  say('Closed loop; latency = final "\\r\\n.\\r\\n" written -> 250 received; CPU and RSS of the server process;');
  say('other CPU % = machine busy outside server and bench, i.e. noise from other programs)');
  say(loadTable(runs));
  spoolWarnings(runs).forEach(say);
  if (!paced.length) return;
  say(`\nIntake at a steady offered load (50 sessions, each starting a 1 KB message every ${f(50_000 / SETTINGS.pacedRate, 0)} ms, ` +
    `${SETTINGS.pacedRate} msg/s in all, measured after ${SETTINGS.pacedWarmupSeconds}s of it, in steady state; ` +
    'the closed loop above measures the ceiling, where latency is mostly waiting: at 50 sessions its mean is about 50 / msg/s;');
  say('"smarthost + relaying": the same daemon also relays each message to a counting sink on the same machine, as in service)');
  say(loadTable(paced));
  spoolWarnings(paced).forEach(say);
}

main().finally(removeTempDirs).then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
