// The systems under test of the relay bench, behind one interface: the built
// smarthost daemon and a private Postfix (test/peers/postfix.ts), each fresh,
// relaying everything to the counting sink on 127.0.0.1. Each reports the CPU
// of its whole process tree, the messages still in its queue, and the lines
// of its mail log that show trouble (deferrals, bounces, warnings, errors),
// and its deliveries ("status=sent" lines) per daemon.
// Either takes mail on a plain port that relays for 127.0.0.1, or on a
// submission port: STARTTLS required, then AUTH required, the same
// credentials and the same kind of certificate (EC P-256, CA-signed) for both.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { testCerts } from '../../test/peers/certs.js';
import { postfixAvailable, startPostfixProvider } from '../../test/peers/postfix.js';
import { spooledFiles, startServer, treeCpuMs } from './servers.js';

/** smarthost: file store; smarthost-pg: queue in PostgreSQL; smarthost-pg2: two daemons on one PostgreSQL queue (see pg-systems.ts). */
export type SystemName = 'smarthost' | 'smarthost-pg' | 'smarthost-pg2' | 'postfix';
export type Listener = 'plain' | 'submission';

/** The SASL user of the submission listeners (Postfix's test provider's default user). */
const LOGIN = { user: 'alice@provider.test', password: 'alice-secret' } as const;

/** Mail log lines worth a look, counted by kind, with the first few kept verbatim. */
export interface Trouble { counts: Record<string, number>; examples: string[] }

export interface RelaySystem {
  readonly name: SystemName;
  /** The ports the load goes to (several daemons: the sessions spread over them evenly): plain SMTP relaying for 127.0.0.1, or submission (see login). */
  readonly ports: readonly number[];
  /** Set for a submission listener: STARTTLS, then AUTH PLAIN with these. */
  readonly login?: { readonly user: string; readonly password: string };
  /** CPU of the whole process tree since it started, ms (see treeCpuMs); with a database, its server's too. */
  cpuMs(): number;
  /** Of cpuMs, the database server's part (PostgreSQL: the postmaster and all its backends). */
  storeCpuMs?(): number;
  /** Messages still in the queue. */
  queued(): number | Promise<number>;
  /** "status=sent" lines in the mail log so far, per daemon (several daemons on one queue: each delivers). */
  sent(): number[];
  trouble(): Trouble;
  stop(): Promise<void>;
}

const TROUBLE: ReadonlyArray<readonly [string, RegExp]> = [
  ['deferred', /status=deferred/], ['bounced', /status=bounced/], ['expired', /status=expired/],
  ['fatal/panic', /\b(fatal|panic):/], ['warning', /\bwarning:/], ['error', /\berror\b/i],
];
const ANY_TROUBLE = /status=(deferred|bounced|expired)|\b(fatal|panic|warning):|\berror\b/i;
const MAX_EXAMPLES = 8;

/**
 * Reads a mail log as it comes, in chunks that may cut a line: counts "status=sent" lines and the
 * trouble lines by kind (a few kept as examples). Only whole lines are read; a quick test skips
 * splitting the common chunk that has no trouble in it.
 */
function logCounter(): { add(text: string): void; sent(): number; trouble(): Trouble } {
  const t: Trouble = { counts: {}, examples: [] };
  let sent = 0;
  let tail = '';
  return {
    add(text) {
      const s = tail + text;
      const cut = s.lastIndexOf('\n') + 1;
      for (let i = s.indexOf('status=sent'); i >= 0 && i < cut; i = s.indexOf('status=sent', i + 1)) sent++;
      const whole = s.slice(0, cut);
      tail = s.slice(cut);
      if (!ANY_TROUBLE.test(whole)) return;
      for (const line of whole.split('\n')) {
        const kind = TROUBLE.find(([, re]) => re.test(line))?.[0];
        if (!kind) continue;
        t.counts[kind] = (t.counts[kind] ?? 0) + 1;
        if (t.examples.length < MAX_EXAMPLES) t.examples.push(line.trim());
      }
    },
    sent: () => sent,
    trouble: () => t,
  };
}

export interface SmarthostOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** [relay] concurrency; undefined keeps smarthost's default. */
  readonly concurrency?: number;
  readonly listener?: Listener;
  /** More TOML for the daemon, e.g. a [queue] store. */
  readonly extraToml?: string;
}

export async function startSmarthost(sinkPort: number, o: SmarthostOptions = {}): Promise<RelaySystem> {
  const log = logCounter();
  const submission = o.listener === 'submission';
  const cert = submission ? testCerts().valid : undefined;
  const toml = [
    '[relay]',
    `url = "smtp://127.0.0.1:${sinkPort}"`,
    'tls = "none"',
    ...(o.concurrency ? [`concurrency = ${o.concurrency}`] : []),
    // a certificate like Postfix's, and no "self-signed" warning in the log
    ...(cert ? ['[tls]', `certificate = "${cert.certFile}"`, `key = "${cert.keyFile}"`] : []),
    o.extraToml ?? '',
  ].join('\n');
  const server = await startServer('smarthost', o.env ?? {}, {
    toml, onOutput: (text) => log.add(text),
    ...(submission ? { listenToml: 'tls = "starttls-required"\nauth = "required"', users: { [LOGIN.user]: LOGIN.password } } : {}),
  });
  return {
    name: 'smarthost', ports: [server.port], ...(submission ? { login: LOGIN } : {}),
    cpuMs: () => treeCpuMs(server.pid),
    queued: () => spooledFiles(server),
    sent: () => [log.sent()],
    trouble: () => log.trouble(),
    stop: () => server.stop(),
  };
}

/** Why the Postfix comparison cannot run here, or undefined when it can. */
export function postfixMissing(): string | undefined {
  if (process.platform !== 'linux') return 'the bench reads Postfix CPU from Linux /proc';
  if (!postfixAvailable()) return '/usr/sbin/postfix or /usr/sbin/saslpasswd2 is not installed (.ci/run installs postfix, sasl2-bin, libsasl2-modules)';
  if (process.getuid?.() !== 0) return 'a private Postfix instance needs root';
  return undefined;
}

const POSTFIX_QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];

function countFiles(dir: string): number {
  let n = 0;
  let entries: fs.Dirent[];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return 0; }
  for (const e of entries) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

/** Postfix parameters that shape this bench, as the instance sees them. */
function postfixSettings(etcDir: string): Record<string, string> {
  const names = ['mail_version', 'default_destination_concurrency_limit', 'initial_destination_concurrency',
    'default_process_limit', 'in_flow_delay', 'smtp_connection_cache_on_demand', 'qmgr_message_active_limit'];
  const out = execFileSync('/usr/sbin/postconf', ['-c', etcDir, ...names], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(/\s*=\s*/, 2) as [string, string]));
}

let postfixInfo: Record<string, string> | undefined;

/** Postfix's version and the parameters that shape the benches, read from the first instance started; undefined before. */
export function postfixSettingsSeen(): Record<string, string> | undefined {
  return postfixInfo;
}

/** One line for the report on Postfix's version and settings, or undefined if none ran. */
export function postfixSettingsLine(): string | undefined {
  const i = postfixInfo;
  return i && `Postfix ${i.mail_version}: ${Object.entries(i).filter(([k]) => k !== 'mail_version').map(([k, v]) => `${k}=${v}`).join(', ')} (its defaults)`;
}

export async function startPostfix(sinkPort: number, listener: Listener = 'plain'): Promise<RelaySystem> {
  const relayTo = { host: '127.0.0.1', port: sinkPort };
  const p = await startPostfixProvider(listener === 'submission' ? { relayTo, users: { [LOGIN.user]: LOGIN.password } } : { relayTo });
  try {
    const pid = Number(fs.readFileSync(path.join(p.dir, 'queue/pid/master.pid'), 'utf8').trim());
    if (!pid) throw new Error('Postfix wrote no master pid');
    postfixInfo ??= postfixSettings(path.join(p.dir, 'etc'));
    return {
      name: 'postfix',
      ...(listener === 'submission' ? { ports: [p.starttlsPort], login: LOGIN } : { ports: [p.plainPort] }),
      cpuMs: () => treeCpuMs(pid),
      queued: () => POSTFIX_QUEUES.reduce((n, q) => n + countFiles(path.join(p.dir, 'queue', q)), 0),
      trouble: () => { const l = logCounter(); l.add(`${p.log()}\n`); return l.trouble(); },
      sent: () => { const l = logCounter(); l.add(`${p.log()}\n`); return [l.sent()]; },
      stop: () => p.stop(),
    };
  } catch (e) {
    await p.stop();
    throw e;
  }
}
