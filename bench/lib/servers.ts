// The servers under test, each a child process on 127.0.0.1 port 0: the
// built smarthost daemon (fresh temp data_dir) or the bare smtp-server
// baseline. Reads their CPU time (also of a whole process tree) and memory
// from /proc. Every child (see track) and temp
// dir is registered so an error, ^C or normal exit still cleans up; temp dirs
// are removed only at the end (see removeTempDirs) so one run's mass unlink
// does not slow the next run's file creation.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const BASELINE = path.join(ROOT, 'dist/bench/baseline-server.js');

/**
 * The node options smarthost runs with when started as users start it (its
 * `smarthost` command's "#!/usr/bin/env -S node ..." line, also in `npm start`).
 */
export const DAEMON_NODE_OPTIONS: string[] = (() => {
  const first = fs.readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\S*env -S node\s*(.*)$/.exec(first);
  return m ? m[1]!.split(/\s+/).filter(Boolean) : [];
})();

export type ServerKind = 'smarthost' | 'baseline';

export interface Server {
  readonly kind: ServerKind;
  readonly pid: number;
  readonly port: number;
  /** The temp dir of this server (config + data_dir), removed by removeTempDirs(). */
  readonly dir: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

// ---- cleanup of everything we started ----

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

/** Registers a child we started, so an error, ^C or exit kills it; stopChild() unregisters it. */
export function track(child: ChildProcess): void {
  children.add(child);
}

export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Removes every temp dir made so far (the exit handler also does, on errors). */
export function removeTempDirs(): void {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

// ---- starting and stopping ----

function smarthostConfig(dataDir: string, extraToml: string, listenToml: string): string {
  return [
    'hostname = "relay.test"',
    `data_dir = "${dataDir}"`,
    '[[listen]]',
    'address = "127.0.0.1:0"',
    listenToml,
    '[limits]',
    'connections = 2000',
    'connections_per_ip = 2000',
    'message_size = "25MB"',
    extraToml,
    '',
  ].join('\n');
}

/**
 * Resolves with the port of the first "listening on 127.0.0.1:PORT" line; drains stdout after.
 * Every stdout and stderr chunk also goes to onOutput (from the start).
 */
function waitListening(child: ChildProcess, what: string, onOutput?: (text: string) => void): Promise<number> {
  let out = '';
  let err = '';
  if (onOutput) for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => onOutput(d.toString()));
  child.stderr!.on('data', (d: Buffer) => { if (err.length < 10_000) err += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 10s:\n${out}${err}`)), 10_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.on('data', () => undefined); // keep draining the mail log
      resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}) before listening:\n${out}${err}`)); });
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) { children.delete(child); return Promise.resolve(); }
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => { clearTimeout(force); children.delete(child); resolve(); });
    child.kill('SIGTERM');
  });
}

export interface StartOptions {
  /** TOML appended to the generated smarthost config, e.g. a [relay] section. */
  readonly toml?: string;
  /** More keys of the smarthost listener, e.g. 'tls = "starttls"'. */
  readonly listenToml?: string;
  /** SASL users (name -> password), added with `smarthost user add` before the daemon starts. */
  readonly users?: Record<string, string>;
  /** Gets every chunk the child writes to stdout (its mail log) and stderr. */
  readonly onOutput?: (text: string) => void;
  /** smarthost: this data_dir (filled beforehand, e.g. with a large queue) instead of a fresh one. */
  readonly dataDir?: string;
}

export async function startServer(kind: ServerKind, env: NodeJS.ProcessEnv = {}, opts: StartOptions = {}): Promise<Server> {
  const dir = tempDir(`smarthost-bench-${kind}-`);
  const dataDir = opts.dataDir ?? path.join(dir, 'data');
  let args: string[];
  if (kind === 'smarthost') {
    const config = path.join(dir, 'smarthost.toml');
    fs.writeFileSync(config, smarthostConfig(dataDir, opts.toml ?? '', opts.listenToml ?? ''));
    for (const [name, password] of Object.entries(opts.users ?? {})) {
      execFileSync(process.execPath, [CLI, 'user', 'add', name, '--password-stdin', '-c', config], { input: `${password}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
    }
    args = [CLI, 'start', '-c', config];
  } else {
    args = [BASELINE];
  }
  // BENCH_NODE_ARGS: more node options for the server, e.g. "--perf-basic-prof" to profile it with perf
  const nodeArgs = [...(kind === 'smarthost' ? DAEMON_NODE_OPTIONS : []), ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  try {
    const port = await waitListening(child, kind, opts.onOutput);
    return {
      kind, pid: child.pid!, port, dir, dataDir,
      stop: () => stopChild(child),
    };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

// ---- /proc ----

export const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

/** Fields of /proc/PID/stat from field 3 (state) on: fields[0] is field 3. */
function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
const ticksMs = (...ticks: Array<string | undefined>) => (ticks.reduce((n, t) => n + Number(t), 0) * 1000) / CLK_TCK;

/** utime + stime of a process, in milliseconds. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  return ticksMs(fields[11], fields[12]);  // fields 14 and 15
}

/**
 * CPU of a whole process tree, in milliseconds: utime + stime of `root` and of
 * every live or zombie descendant, plus root's cutime + cstime (fields 16, 17),
 * which hold the CPU of descendants that exited and were reaped. A child is in
 * exactly one of the two at any moment, so differences of this figure are the
 * tree's CPU in between, however many processes came and went (Postfix forks
 * and retires its daemons all the time). Children are read before root's
 * cutime: one reaped in between is counted twice rather than lost.
 */
export function treeCpuMs(root: number): number {
  const parent = new Map<number, number>();
  const own = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let f: string[];
    try { f = statFields(name); } catch { continue; } // exited meanwhile
    parent.set(Number(name), Number(f[1]));
    own.set(Number(name), ticksMs(f[11], f[12]));
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) if (p === root) return true;
    return false;
  };
  let total = 0;
  for (const [pid, ms] of own) if (pid !== root && inTree(pid)) total += ms;
  const r = statFields(root);
  return total + ticksMs(r[11], r[12], r[13], r[14]);
}

/** A "VmRSS"/"VmHWM" figure of /proc/PID/status, in MB. */
export function memMB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** CPU time of the whole machine that was not idle (all CPUs), in milliseconds. */
export function machineBusyMs(): number {
  const [user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / CLK_TCK;
}

/**
 * Messages in the daemon's spool, to check every 250 left one: files in queue/messages whose
 * first line says "smarthost-queue 2" and whose envelope names their id (not the empty files
 * the daemon names ahead, not a message still being received, not a spare of a delivered one).
 */
export function spooledFiles(server: Server): number {
  const dir = path.join(server.dataDir, 'queue', 'messages');
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return 0; }
  const buf = Buffer.alloc(64 * 1024);
  return names.filter((id) => {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.join(dir, id), 'r');
      const head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('latin1').split('\n', 2);
      return head[0] === 'smarthost-queue 2' && (JSON.parse(head[1] ?? '') as { id?: string }).id === id;
    } catch { return false; } finally { if (fd !== undefined) fs.closeSync(fd); }
  }).length;
}
