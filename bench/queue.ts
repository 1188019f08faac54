// Large-queue benchmark (issue 21). The queues are written straight into a
// data_dir in the spool format (bench/lib/queue-files.ts), then:
//   recovery  the daemon starts on N deferred messages: time until it listens,
//             until the "queue recovered" line, its RSS then (and its peak);
//   listing   `smarthost queue --json` of the same N: complete (entries
//             counted), streamed (time to the first byte against the whole
//             run; the CLI's peak RSS), total time;
//   drain     the daemon starts on M messages due now, relaying to the
//             counting sink: messages per second until the last arrives,
//             against the steady-state relay rate of a relay cell (1 KB,
//             closed loop) measured in the same run.
// BENCH_QUEUE_MESSAGES (N, default 1,000,000) and BENCH_QUEUE_DRAIN (M,
// default 100,000) allow quick runs; BENCH_QUEUE_CELLS=recovery,listing skips the drain.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { wireMessage } from './lib/messages.js';
import { writeQueue } from './lib/queue-files.js';
import { measureCell } from './lib/relay-cell.js';
import { startSmarthost } from './lib/relay-systems.js';
import { CLI, cpuMs, memMB, removeTempDirs, startServer, tempDir } from './lib/servers.js';
import { startSink } from './lib/sink.js';
import { envNumber } from './lib/env.js';
import { f, say, table } from './lib/report.js';

const SETTINGS = {
  messages: envNumber('BENCH_QUEUE_MESSAGES', 1_000_000),
  drain: envNumber('BENCH_QUEUE_DRAIN', 100_000),
  /** sessions of the relay cell the drain is compared with */
  relaySessions: envNumber('BENCH_QUEUE_RELAY_SESSIONS', 50),
  relaySeconds: envNumber('BENCH_SECONDS', 5),
  /** "recovery,listing,drain" by default (listing needs recovery's queue) */
  cells: (process.env.BENCH_QUEUE_CELLS ?? 'recovery,listing,drain').split(','),
};
const TARGET = { recoverSeconds: 60, rssMB: 500, listSeconds: 60 };

const progress = (s: string) => process.stderr.write(`  ${s}\n`);
const seconds = (since: number) => (performance.now() - since) / 1000;
const n = (x: number) => x.toLocaleString('en-US');

/** Resolves when `re` appears in the text given to the returned `feed` (chunks may cut lines). */
function watchFor(re: RegExp): { feed: (text: string) => void; seen: Promise<number> } {
  let tail = '';
  let found!: (at: number) => void;
  const seen = new Promise<number>((resolve) => { found = resolve; });
  return {
    feed: (text) => { tail = (tail + text).slice(-4096); if (re.test(tail)) found(performance.now()); },
    seen,
  };
}

interface Recovery { listenS: number; recoveredS: number; rssMB: number; peakMB: number; cpuS: number; config: string }

async function recoveryCell(dataDir: string): Promise<Recovery> {
  const line = watchFor(new RegExp(`queue recovered: ${SETTINGS.messages} messages? waiting`));
  const t0 = performance.now();
  const server = await startServer('smarthost', {}, { dataDir, onOutput: line.feed });
  const listenS = seconds(t0);
  const recoveredS = (await line.seen - t0) / 1000;
  const r = { listenS, recoveredS, rssMB: memMB(server.pid, 'VmRSS'), peakMB: memMB(server.pid, 'VmHWM'), cpuS: cpuMs(server.pid) / 1000, config: path.join(server.dir, 'smarthost.toml') };
  await server.stop();
  return r;
}

interface Listing { entries: number; firstByteS: number; totalS: number; bytes: number; peakMB: number; cpuS: number; exit: number | null }

/** `smarthost queue --json`, its output counted as it streams by (never kept). */
function listingCell(config: string): Promise<Listing> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'queue', '--json', '-c', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  let firstByteS = 0;
  let bytes = 0;
  let entries = 0;
  let carry = '';
  let peakMB = 0;
  let cpuS = 0;
  const poll = setInterval(() => {
    try { peakMB = Math.max(peakMB, memMB(child.pid!, 'VmHWM')); cpuS = cpuMs(child.pid!) / 1000; } catch { /* exited */ }
  }, 200);
  child.stdout.on('data', (d: Buffer) => {
    if (!bytes) firstByteS = seconds(t0);
    bytes += d.length;
    // each entry starts with the 7 characters {"id":" ; 6 carried over catch one cut between two chunks, never count one twice
    const text = carry + d.toString('latin1');
    entries += text.split('{"id":"').length - 1;
    carry = text.slice(-6);
  });
  return new Promise((resolve) => child.once('close', (exit) => {
    clearInterval(poll);
    resolve({ entries, firstByteS, totalS: seconds(t0), bytes, peakMB, cpuS, exit });
  }));
}

interface Drain { messages: number; seconds: number; perSecond: number; relayPerSecond: number }

async function drainCell(): Promise<Drain> {
  const relay = await measureCell((port) => startSmarthost(port), { sizeBytes: 1024, sessions: SETTINGS.relaySessions, message: wireMessage(1024) },
    { seconds: SETTINGS.relaySeconds, warmupSeconds: 2, drainIdleSeconds: 5, drainMaxSeconds: 30 });
  progress(`relay cell: ${f(relay.cell.e2ePerSecond, 0)} msg/s end to end (1 KB x ${SETTINGS.relaySessions} sessions)`);
  const dataDir = path.join(tempDir('smarthost-bench-drain-'), 'data');
  await writeQueue(dataDir, SETTINGS.drain, false);
  const sink = await startSink();
  try {
    const t0 = performance.now();
    const server = await startServer('smarthost', {}, { dataDir, toml: `[relay]\nurl = "smtp://127.0.0.1:${sink.port}"\ntls = "none"` });
    try {
      while (sink.other() < SETTINGS.drain) {
        await new Promise((r) => setTimeout(r, 100));
        if (seconds(t0) > 3600) throw new Error(`drain: only ${sink.other()} of ${SETTINGS.drain} arrived in an hour`);
      }
      const s = seconds(t0);
      return { messages: sink.other(), seconds: s, perSecond: SETTINGS.drain / s, relayPerSecond: relay.cell.e2ePerSecond };
    } finally { await server.stop(); }
  } finally { await sink.stop(); }
}

async function main(): Promise<void> {
  say(`smarthost large-queue bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(`queues written straight into the spool (1 KB messages, one recipient each); N = ${n(SETTINGS.messages)} deferred (next try in an hour), M = ${n(SETTINGS.drain)} due now`);
  const ok = (good: boolean) => (good ? 'yes' : 'NO');
  const rows: string[][] = [];
  if (SETTINGS.cells.includes('recovery')) {
    const dir = tempDir('smarthost-bench-queue-');
    const dataDir = path.join(dir, 'data');
    let t = performance.now();
    await writeQueue(dataDir, SETTINGS.messages, true);
    progress(`${n(SETTINGS.messages)} deferred messages written in ${f(seconds(t), 0)} s`);
    const rec = await recoveryCell(dataDir);
    progress(`recovery: listening after ${f(rec.listenS, 2)} s, recovered after ${f(rec.recoveredS, 1)} s`);
    rows.push(
      ['recovery', `listening after start (N = ${n(SETTINGS.messages)})`, `${f(rec.listenS, 2)} s`, 'at once', ok(rec.listenS < 5)],
      ['recovery', 'fully recovered after start', `${f(rec.recoveredS, 1)} s`, `< ${TARGET.recoverSeconds} s`, ok(rec.recoveredS < TARGET.recoverSeconds)],
      ['recovery', 'daemon RSS after recovery (peak)', `${f(rec.rssMB, 0)} MB (${f(rec.peakMB, 0)})`, `< ${TARGET.rssMB} MB`, ok(rec.rssMB < TARGET.rssMB)],
      ['recovery', 'daemon CPU (user+sys) until recovered', `${f(rec.cpuS, 1)} s`, '', ''],
    );
    if (SETTINGS.cells.includes('listing')) {
      const list = await listingCell(rec.config);
      progress(`queue --json: ${n(list.entries)} entries in ${f(list.totalS, 1)} s`);
      rows.push(
        ['listing', 'queue --json entries', n(list.entries), n(SETTINGS.messages), ok(list.entries === SETTINGS.messages && list.exit === 0)],
        ['listing', 'first byte after (of total)', `${f(list.firstByteS, 2)} s (${f(list.totalS, 1)} s)`, 'streamed', ok(list.firstByteS < list.totalS / 2)],
        ['listing', 'total time', `${f(list.totalS, 1)} s`, `< ${TARGET.listSeconds} s`, ok(list.totalS < TARGET.listSeconds)],
        ['listing', 'CLI CPU (user+sys)', `${f(list.cpuS, 1)} s`, '', ''],
        ['listing', 'CLI peak RSS; output', `${f(list.peakMB, 0)} MB; ${f(list.bytes / 1e6, 0)} MB`, '', ''],
      );
    }
    t = performance.now();
    fs.rmSync(dir, { recursive: true, force: true });
    progress(`removed in ${f(seconds(t), 0)} s`);
  }
  if (SETTINGS.cells.includes('drain')) {
    const drain = await drainCell();
    rows.push(
      ['drain', `backlog of ${n(SETTINGS.drain)} due now, start to last arrival`, `${f(drain.seconds, 1)} s = ${f(drain.perSecond, 0)} msg/s`, '', ''],
      ['drain', `steady-state relay, 1 KB x ${SETTINGS.relaySessions} (same run)`, `${f(drain.relayPerSecond, 0)} msg/s`, '', ''],
      ['drain', 'drain / relay', f(drain.perSecond / drain.relayPerSecond, 2), '>= 1', ok(drain.perSecond >= drain.relayPerSecond)],
    );
  }
  say('');
  say(table(['cell', 'figure', 'value', 'target', 'met'], rows));
  say('');
  say('  time figures are wall clock on a shared machine (see the load average above); CPU figures are the process\'s own.');
}

main().then(() => removeTempDirs(), (e) => { process.stderr.write(`${(e as Error).stack}\n`); removeTempDirs(); process.exit(1); });
