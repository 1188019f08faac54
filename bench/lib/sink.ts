// The parent's side of the counting sink (bench/sink-server.ts): starts it as
// a separate child process, so its CPU is not the system under test's, and
// collects its per-message reports: arrival time by X-Bench-Id, duplicates,
// messages without an id, and how many connections were made to it.
import { fork } from 'node:child_process';
import path from 'node:path';
import type { SinkReport } from '../sink-server.js';
import { cpuMs, ROOT, stopChild, track } from './servers.js';

const SCRIPT = path.join(ROOT, 'dist/bench/sink-server.js');

/** CLOCK_MONOTONIC in milliseconds: the clock the sink stamps arrivals with. */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface Sink {
  readonly pid: number;
  readonly port: number;
  /** Arrival time (monoMs) of each id, first arrival only. */
  readonly arrivals: Map<number, number>;
  /** Arrivals of an id seen before. */
  readonly duplicates: () => number;
  /** Messages without an X-Bench-Id header (bounces, notices). */
  readonly other: () => number;
  /** SMTP connections accepted so far. */
  readonly connections: () => number;
  /** monoMs of the latest arrival of any message with an id. */
  readonly lastArrival: () => number;
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const child = fork(SCRIPT, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  track(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { if (err.length < 10_000) err += d.toString(); });
  const arrivals = new Map<number, number>();
  let duplicates = 0;
  let other = 0;
  let connections = 0;
  let lastArrival = 0;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sink did not start within 10s: ${err}`)), 10_000);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sink exited (${code}) before listening: ${err}`)); });
      child.on('message', (m: SinkReport) => {
        if (m.kind === 'listening') { clearTimeout(timer); resolve(m.port); return; }
        m.ids.forEach((id, i) => {
          const at = m.at[i]!;
          if (arrivals.has(id)) duplicates++;
          else arrivals.set(id, at);
          if (at > lastArrival) lastArrival = at;
        });
        other += m.other;
        connections = m.connections;
      });
    });
    return {
      pid: child.pid!, port, arrivals,
      duplicates: () => duplicates, other: () => other, connections: () => connections, lastArrival: () => lastArrival,
      cpuMs: () => cpuMs(child.pid!),
      stop: () => stopChild(child),
    };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}
