// A private PostgreSQL cluster for tests and benchmarks: initdb into a temp dir,
// postgres on a free 127.0.0.1 port (and a Unix socket in the same dir), scram
// passwords over TCP. Never touches a system-wide cluster. initdb refuses to run
// as root, so as root (CI) every server process runs as the Debian `postgres`
// user through runuser. stop() leaves no process and no file behind.
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

let bin: string | undefined;
/** Found at first use, so that importing this file does not fail where PostgreSQL is missing (see postgresMissing). */
const binDir = (): string => (bin ??= process.env.PG_BIN ?? findBin());
const SUPERUSER = 'postgres';
const PASSWORD = 'test-secret';

export interface PgCluster {
  readonly port: number;
  /** The temp dir: data/, the socket, log. */
  readonly dir: string;
  /** A superuser URL for `db` (default `postgres`). */
  url(db?: string): string;
  /** Creates a fresh database and returns its superuser URL. */
  createDatabase(name: string): Promise<string>;
  /** Creates a login role with a password; returns a URL for it on `db`. */
  createRole(name: string, password: string, db: string, grants?: string): Promise<string>;
  /** Runs SQL through psql as the superuser, returns stdout (unaligned, tuples only). */
  psql(sql: string, db?: string): Promise<string>;
  /** Stops the server (`-m immediate`: as a crash would), keeping the data. */
  halt(): Promise<void>;
  /** Starts the server again on the same port after halt(). */
  resume(): Promise<void>;
  /** The server log so far. */
  log(): string;
  /** The running server's postmaster pid (its backends are its children); it changes with resume(). */
  pid(): number;
  /** Stops the server and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

function findBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)');
  return path.join(root, versions[0]!, 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Why startPostgres() cannot work here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  let dir: string;
  try { dir = binDir(); } catch (e) { return (e as Error).message; }
  const absent = ['initdb', 'pg_ctl', 'postgres', 'psql'].filter((b) => !fs.existsSync(path.join(dir, b)));
  if (absent.length) return `${absent.join(', ')} not found in ${dir}`;
  if (asRoot) {
    try { execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' }); } catch { return 'as root, the server runs as the `postgres` user, and there is none (apt-get install postgresql)'; }
  }
  return undefined;
}

function run(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { ...opts, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} failed: ${String(stderr) || err.message}`));
      else resolve(String(stdout));
    });
  });
}


export async function startPostgres(): Promise<PgCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-pg-'));
  if (asRoot) { fs.chmodSync(dir, 0o755); await chownToPostgres(dir); }
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, PASSWORD + '\n', { mode: 0o644 });
  await run(path.join(binDir(), 'initdb'), ['-D', data, '-U', SUPERUSER, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256',
    '-E', 'UTF8', '--locale=C', '--no-sync']);
  fs.rmSync(pwfile);
  const logFile = path.join(dir, 'log');
  let port = 0;
  const ctl = (...args: string[]) => run(path.join(binDir(), 'pg_ctl'), ['-D', data, '-w', '-t', '60', ...args]);
  const startOn = async (p: number) => {
    const o = `-c listen_addresses=127.0.0.1 -c port=${p} -c unix_socket_directories=${dir} -c max_connections=200 -c shared_buffers=32MB -c fsync=on -c synchronous_commit=on`;
    await ctl('-l', logFile, '-o', o, 'start');
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try { await startOn(port); break; } catch (e) {
      if (attempt >= 3) { fs.rmSync(dir, { recursive: true, force: true }); throw e; }
    }
  }
  let running = true;
  let removed = false;
  const url = (db = 'postgres') => `postgresql://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${db}`;
  const psql = (sql: string, db = 'postgres') =>
    run(path.join(binDir(), 'psql'), ['-h', dir, '-p', String(port), '-U', SUPERUSER, '-d', db, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  return {
    port, dir, url, psql,
    async createDatabase(name) { await psql(`CREATE DATABASE "${name}"`); return url(name); },
    async createRole(name, password, db, grants) {
      await psql(`CREATE ROLE "${name}" LOGIN PASSWORD '${password}'`);
      if (grants) await psql(grants, db);
      return `postgresql://${name}:${password}@127.0.0.1:${port}/${db}`;
    },
    pid: () => Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    async halt() { if (running) { await ctl('-m', 'immediate', 'stop'); running = false; } },
    async resume() { if (!running) { await startOn(port); running = true; } },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async stop() {
      if (removed) return;
      if (running) { await ctl('-m', 'fast', 'stop').catch(() => ctl('-m', 'immediate', 'stop')); running = false; }
      fs.rmSync(dir, { recursive: true, force: true });
      removed = true;
    },
  };
}

async function chownToPostgres(dir: string): Promise<void> {
  const id = (flag: string) => new Promise<number>((resolve, reject) =>
    execFile('id', [flag, 'postgres'], (err, out) => (err ? reject(new Error('no `postgres` user: apt-get install postgresql')) : resolve(Number(out.trim())))));
  fs.chownSync(dir, await id('-u'), await id('-g'));
}
