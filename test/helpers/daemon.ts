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
  /** Extra environment, e.g. NODE_EXTRA_CA_CERTS so the daemon trusts the test CA where no ca_file applies (MX hosts). */
  readonly env?: Readonly<Record<string, string>>;
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
  const child = spawn(cmd!, [...pre, ...argv], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
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

/**
 * What a file in queue/messages/ holds, read independently of the spool code: a message (first
 * line "smarthost-queue 1" or 2, envelope naming this id), empty (named ahead by the daemon), a
 * spare (a delivered message's file under a new id, waiting to be written over), something else,
 * or gone (removed since the directory was listed).
 */
function queueFile(dirp: string, id: string): { kind: 'message'; envelope: Record<string, unknown>; body: Buffer } | { kind: 'empty' | 'spare' | 'other' | 'gone' } {
  let buf: Buffer;
  try { buf = fs.readFileSync(path.join(dirp, id)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' }; // a running daemon removed it meanwhile
    throw e;
  }
  if (buf.length === 0) return { kind: 'empty' };
  const first = buf.indexOf(0x0a);
  const second = buf.indexOf(0x0a, first + 1);
  const magic = buf.subarray(0, first).toString('latin1');
  if (!/^smarthost-queue [12]$/.test(magic) || second < 0) return { kind: 'other' };
  let envelope: Record<string, unknown>;
  try { envelope = JSON.parse(buf.subarray(first + 1, second).toString('utf8')) as Record<string, unknown>; } catch { return { kind: 'other' }; }
  if (envelope.id !== id) return { kind: 'spare' };
  // version 2 files end in a 16-byte trailer (CRC-32 and length), not part of the message
  const end = magic === 'smarthost-queue 2' ? buf.length - 16 : buf.length;
  return { kind: 'message', envelope, body: buf.subarray(second + 1, end) };
}

/**
 * Files in the queue that are neither a message nor one of the at most 64 empty files the
 * running daemon names ahead in messages/: partial files in tmp/, files in messages/ still
 * being received or never finished. (Spare files of delivered mail count too: a test that
 * has delivered mail cannot use this.)
 */
export function queueLeftovers(dataDir: string): string[] {
  const tmp = fs.readdirSync(path.join(dataDir, 'queue', 'tmp')).map((n) => `tmp/${n}`);
  const dirp = path.join(dataDir, 'queue', 'messages');
  const kinds = fs.readdirSync(dirp).map((id) => ({ id, kind: queueFile(dirp, id).kind }));
  const empty = kinds.filter((k) => k.kind === 'empty').length;
  return [...tmp, ...kinds.filter((k) => k.kind === 'other' || k.kind === 'spare').map((k) => `messages/${k.id}`),
    ...(empty > 64 ? [`${empty} empty files in messages/, more than the 64 named ahead`] : [])];
}

/** Spare files in messages/: delivered messages' files kept for the next message to be written over. */
export function spareFiles(dataDir: string): number {
  const dirp = path.join(dataDir, 'queue', 'messages');
  return fs.readdirSync(dirp).filter((id) => queueFile(dirp, id).kind === 'spare').length;
}

/** The stored messages in the spool (messages/), as { id, envelope, body }; not empty or unfinished files. */
export function spoolMessages(dataDir: string): Array<{ id: string; envelope: Record<string, unknown>; body: Buffer }> {
  const dirp = path.join(dataDir, 'queue', 'messages');
  if (!fs.existsSync(dirp)) return [];
  return fs.readdirSync(dirp).sort().flatMap((id) => {
    const f = queueFile(dirp, id);
    return f.kind === 'message' ? [{ id, envelope: f.envelope, body: f.body }] : [];
  });
}

/** One stored message by queue id, or undefined when messages/ID is not a committed message. */
export function spoolMessage(dataDir: string, id: string): { envelope: Record<string, unknown>; body: Buffer } | undefined {
  const f = queueFile(path.join(dataDir, 'queue', 'messages'), id);
  return f.kind === 'message' ? { envelope: f.envelope, body: f.body } : undefined;
}
