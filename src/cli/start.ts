// `smarthost start`: run in the foreground until SIGTERM/SIGINT.
import fs from 'node:fs';
import { fileSink, MailLog, stdoutSink } from '../maillog/maillog.js';
import { createDaemon, VERSION, type BoundListener, type Daemon } from '../daemon.js';
import { ConfigError, EMBEDDED_DEFAULT, loadConfig } from '../config/load.js';
import type { Config, Problem } from '../config/types.js';
import { configOrReport, EXIT } from './common.js';
import { environmentFindings } from './check-environment.js';

/** The version, for `smarthost --version` and the man pages (only this file imports daemon.ts). */
export { VERSION };
import { listenOverride, type Override } from '../config/environment.js';

export const help = `usage: smarthost start [-c FILE] [--log-format postfix|json] [--listen HOST:PORT ...]
--listen (repeatable) replaces the [[listen]] addresses for a quick try; each
listener keeps the other settings of the first [[listen]] (as SMARTHOST_LISTEN).
Runs the relay in the foreground. Logs go to stdout, or to [log] file (then
start says so on stderr); SIGUSR1 reopens [log] file after log rotation.
SIGHUP reloads the configuration, [log] and certificates without dropping
sessions (an invalid new configuration is refused and the running one kept),
and also reopens [log] file.
SIGTERM or SIGINT stop it: no new sessions or transactions, open transactions
and deliveries under way finish (up to 30 s); a second signal exits at once.`;

export async function run(opts: { config?: string; logFormat?: string; listen?: readonly string[] }): Promise<number> {
  const overrides: Override[] = opts.listen?.length ? [listenOverride(opts.listen)] : [];
  const config = configOrReport(opts.config, overrides);
  if (!config) {
    process.stderr.write('smarthost: not starting; fix the problems above (run `smarthost check` to see them again)\n');
    return EXIT.CONFIG;
  }
  let logs: LogSwitch;
  try {
    logs = new LogSwitch(config, opts.logFormat);
  } catch (e) {
    process.stderr.write(`smarthost: fatal: ${(e as Error).message}; create the folder and give it to the user smarthost runs as\n`);
    return EXIT.CANTCREAT;
  }
  const log = logs.log;
  // logrotate's postrotate sends USR1 (contrib/logrotate.d/smarthost); a listener also keeps
  // Node from opening its inspector on USR1
  process.on('SIGUSR1', () => log.reopen());
  log.started(VERSION, config.source);
  const daemon = await startDaemon(config, log);
  if (!daemon) return EXIT.CANTCREAT;
  let reloading = Promise.resolve();
  const onHup = () => { reloading = reloading.then(() => reload(daemon, opts.config, logs, overrides)); };
  process.on('SIGHUP', onHup);
  await stopSignal(log, onHup);
  await reloading;
  await daemon.close();
  log.stopped();
  // whatever handle is left (a client that ignores 421) must not keep a stopped daemon alive
  setTimeout(() => process.exit(EXIT.OK), 200).unref();
  return EXIT.OK;
}

/** Builds the daemon and binds its ports; undefined when that failed (logged, with a hint, and what was built closed). */
async function startDaemon(config: Config, log: MailLog): Promise<Daemon | undefined> {
  let daemon: Daemon | undefined;
  try {
    daemon = await createDaemon(config, { log, check: environmentFindings });
    const bound = await daemon.listen();
    if (config.source === EMBEDDED_DEFAULT) process.stderr.write(embeddedDefaultNotice(config, bound));
    return daemon;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = startHint(err);
    log.fatal(`${err.message}${hint}`);
    // the log may be a file nobody watches while starting by hand
    if (config.log.file) process.stderr.write(`smarthost: fatal: ${err.message}${hint}\n`);
    await daemon?.close();
    return undefined;
  }
}

/** What to do about a start that failed, for the errors people meet: the port taken, a low port, a file of another user. */
function startHint(err: NodeJS.ErrnoException): string {
  const binding = err.syscall === 'listen' || err.syscall === 'bind';
  return err.code === 'EADDRINUSE' ? ' (another program already listens there; stop it or pick another address in [[listen]])'
    : err.code === 'EACCES' && binding ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
    : err.code === 'EACCES' ? ' (a file smarthost needs belongs to another user; run `smarthost check` to find it)' : '';
}

/** Started without a smarthost.toml: what runs, and how to send through a provider instead. */
function embeddedDefaultNotice(config: Config, bound: readonly BoundListener[]): string {
  return [
    `smarthost: no smarthost.toml found, running on the embedded default:`,
    ...bound.map((b) => `  accepting mail on ${b.address} (loopback clients may relay)`),
    `  queue and mailboxes in ${config.dataDir}`,
    ...(config.overrides?.length ? [`  from the environment: ${config.overrides.map((o) => `${o.name}=${o.value}`).join(', ')}`] : []),
    ...(config.relay ? [] : [
      `To send through your provider, create ./smarthost.toml (\`smarthost config default\` prints this one) with, for example:`,
      `  [relay]`,
      `  url = "smtp://smtp.example.com:587"`,
      `  username = "you@example.com"`,
      `  password_file = "/etc/smarthost/relay.secret"`,
      `then run \`smarthost check\`. See README.md.`]),
    ''].join('\n');
}

/** Resolves at the first SIGTERM or SIGINT (reloads end there); a second one exits at once. */
function stopSignal(log: MailLog, onHup: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        log.stopping(`received ${sig} again: exiting now; unfinished deliveries are retried at the next start`);
        process.exit(EXIT.OK);
      }
      stopping = true;
      process.off('SIGHUP', onHup); // no reload of a daemon that is closing
      process.on('SIGHUP', () => undefined);
      log.stopping(`received ${sig}; finishing open transactions and deliveries (send it again to exit at once)`);
      resolve();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * The daemon's one MailLog and where it writes: [log] file and format (--log-format wins over
 * [log] format). A reload that changes them moves the log; with a file, stderr says where.
 */
class LogSwitch {
  readonly log: MailLog;
  private file: string | undefined;
  private format: 'postfix' | 'json';
  constructor(config: Config, private readonly formatFlag: string | undefined) {
    const cannot = config.log.file !== undefined ? unopenable(config.log.file) : undefined;
    if (cannot) throw new Error(cannot);
    this.file = config.log.file;
    this.format = this.formatOf(config);
    this.log = new MailLog({ format: this.format, hostname: config.hostname, ...(this.file ? { sink: fileSink(this.file) } : {}) });
    this.tell();
  }

  private formatOf(c: Config): 'postfix' | 'json' {
    return this.formatFlag === 'json' || this.formatFlag === 'postfix' ? this.formatFlag : c.log.format;
  }

  /** With [log] file, nothing shows on the terminal: say where the log is. */
  private tell(): void {
    if (this.file) process.stderr.write(`smarthost: logging to ${this.file} (format ${this.format}); SIGUSR1 reopens it after log rotation\n`);
  }

  /** Why a new config's [log] file cannot be used (the reload is then refused), or undefined. */
  problem(c: Config): Problem | undefined {
    const cannot = c.log.file !== undefined && c.log.file !== this.file ? unopenable(c.log.file) : undefined;
    return cannot ? { file: c.source, path: 'log.file', message: cannot, fix: 'create the folder and give it to the user smarthost runs as, then send SIGHUP again' } : undefined;
  }

  /** A valid new config: its [log] and hostname apply from now on. */
  apply(c: Config): void {
    const format = this.formatOf(c);
    const moved = c.log.file !== this.file;
    if (moved || format !== this.format) this.log.logMoved(c.log.file ?? '', format);
    this.log.reconfigure({ format, hostname: c.hostname, ...(moved ? { sink: c.log.file ? fileSink(c.log.file) : stdoutSink } : {}) });
    const changed = moved || format !== this.format;
    this.file = c.log.file;
    this.format = format;
    if (changed) this.tell();
  }
}

/** Why `file` cannot be opened for appending (it is created if missing), or undefined. */
function unopenable(file: string): string | undefined {
  try {
    fs.closeSync(fs.openSync(file, 'a', 0o640));
    return undefined;
  } catch (e) {
    return `cannot open the log file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

/**
 * SIGHUP: [log] file is reopened (rotation by rename works with HUP too), then a new config is
 * swapped in only when it is valid, with its [log]; otherwise every problem is logged and the
 * old one stays.
 */
async function reload(daemon: Daemon, file: string | undefined, logs: LogSwitch, overrides: readonly Override[]): Promise<void> {
  const { log } = logs;
  log.reopen();
  let problems: readonly Problem[];
  let source = file ?? '(search path)';
  try {
    const next = loadConfig(file, overrides);
    source = next.source;
    const logProblem = logs.problem(next);
    problems = logProblem ? [logProblem] : await daemon.reload(next);
    if (!problems.length) logs.apply(next);
  } catch (e) {
    if (!(e instanceof ConfigError)) problems = [{ file: source, path: '', message: (e as Error).message, fix: 'fix it and send SIGHUP again' }];
    else problems = e.problems;
  }
  if (!problems.length) { log.reloaded(source); return; }
  log.warning(`SIGHUP: the new configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}; keeping the running one`);
  for (const p of problems) log.warning(`${p.file}${p.line ? `:${p.line}` : ''}: ${p.message} (fix: ${p.fix})`);
}
