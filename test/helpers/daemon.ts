// Starts the built smarthost daemon as a child process with a generated TOML
// and a temporary data_dir, waits for its "listening on" lines, and cleans up.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

export function tempDir(prefix = 'smarthost-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunningDaemon {
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly ports: number[];
  readonly child: ChildProcess;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  /** Runs a CLI verb against the same config, synchronously. */
  cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string };
}

export interface DaemonOptions {
  /** Extra TOML after the generated hostname/data_dir lines; must contain the [[listen]] sections (port 0). */
  readonly toml: string;
  readonly dir?: string;
  readonly args?: string[];
  readonly listeners?: number;
  /** Wrap the command, e.g. ['sh', '-c', 'ulimit -f 8; exec "$0" "$@"'] */
  readonly wrap?: string[];
}

/**
 * Tests never ask the real DNS: unless a test sets its own [mx], direct MX
 * delivery asks a closed loopback port, which fails at once (mail defers).
 */
export const NO_DNS = '[mx]\nnameservers = ["127.0.0.1:9"]\n';

export function writeConfig(dir: string, toml: string): string {
  const file = path.join(dir, 'smarthost.toml');
  const mx = /^\s*\[mx\]/m.test(toml) ? '' : NO_DNS;
  fs.writeFileSync(file, `hostname = "relay.test"\ndata_dir = "${path.join(dir, 'data')}"\n${toml}\n${mx}`);
  return file;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const dir = opts.dir ?? tempDir();
  const configFile = writeConfig(dir, opts.toml);
  return launch(dir, configFile, opts);
}

/** Starts (or restarts) a daemon on an existing dir/config. */
export async function launch(dir: string, configFile: string, opts: Omit<DaemonOptions, 'toml'> = {}): Promise<RunningDaemon> {
  const expected = opts.listeners ?? (fs.readFileSync(configFile, 'utf8').match(/^\s*\[\[listen\]\]/gm)?.length || 1);
  const argv = [CLI, 'start', '-c', configFile, ...(opts.args ?? [])];
  const [cmd, ...pre] = opts.wrap ? [...opts.wrap, process.execPath] : [process.execPath];
  const child = spawn(cmd!, [...pre, ...argv], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); waiters.splice(0).forEach((w) => w()); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { waiters.splice(0).forEach((w) => w()); resolve(code); }));

  const waitForLog = (re: RegExp, timeoutMs = 10_000) => new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${re} in daemon log:\n${out}\nstderr:\n${err}`)), timeoutMs);
    const check = () => {
      const m = re.exec(out);
      if (m) { clearTimeout(deadline); return resolve(m[0]); }
      if (child.exitCode !== null) { clearTimeout(deadline); return reject(new Error(`daemon exited (${child.exitCode}) before ${re}:\n${out}\n${err}`)); }
      waiters.push(check);
    };
    check();
  });

  const ports: number[] = [];
  const listening = /listening on (?:\[[^\]]+\]|[^ :]+):(\d+)/g;
  await waitForLog(new RegExp(`(?:listening on .*\\n[^]*){${expected}}`));
  for (const m of out.matchAll(listening)) ports.push(Number(m[1]));

  const d: RunningDaemon = {
    dir, dataDir: path.join(dir, 'data'), configFile, ports, child,
    logs: () => out,
    waitForLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    cli(args, input) {
      const r = spawnSync(process.execPath, [CLI, ...args, '-c', configFile], { cwd: dir, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
  return d;
}

export function runCli(args: string[], opts: { cwd?: string; input?: string } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? os.tmpdir(), encoding: 'utf8', ...(opts.input !== undefined ? { input: opts.input } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The stored message files in the spool (messages/), as { id, head, body }. */
/**
 * Files in queue/tmp/ other than those the daemon `pid` keeps there on purpose: at most 32 empty
 * files created ahead for new mail. (Spare files of delivered mail are not empty: a test that
 * has delivered mail cannot use this.)
 */
export function tmpLeftovers(dataDir: string, pid: number | undefined): string[] {
  const dir = path.join(dataDir, 'queue', 'tmp');
  const names = fs.readdirSync(dir);
  const ahead = names.filter((n) => n.endsWith(`.${pid}`) && fs.statSync(path.join(dir, n)).size === 0);
  return [...names.filter((n) => !ahead.includes(n)), ...(ahead.length > 32 ? [`${ahead.length} empty files, more than the 32 created ahead`] : [])];
}

export function spoolMessages(dataDir: string): Array<{ id: string; envelope: Record<string, unknown>; body: Buffer }> {
  const dirp = path.join(dataDir, 'queue', 'messages');
  if (!fs.existsSync(dirp)) return [];
  return fs.readdirSync(dirp).sort().map((id) => {
    const buf = fs.readFileSync(path.join(dirp, id));
    const first = buf.indexOf(0x0a);
    const second = buf.indexOf(0x0a, first + 1);
    // version 2 files end in a 16-byte trailer (CRC-32 and length), not part of the message
    const end = buf.subarray(0, first).toString('latin1') === 'smarthost-queue 2' ? buf.length - 16 : buf.length;
    return { id, envelope: JSON.parse(buf.subarray(first + 1, second).toString('utf8')), body: buf.subarray(second + 1, end) };
  });
}
