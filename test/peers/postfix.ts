// A real Postfix configured like a mail provider, for end-to-end tests and benchmarks.
// Each call starts a private instance (own config, queue, data, log and Maildir under one
// temp dir) on free 127.0.0.1 ports: a submission-like STARTTLS port and an implicit-TLS
// port that both demand SASL AUTH, and a plain port 25-like port. stop() leaves no
// process and no file behind. Needs the Debian packages postfix, sasl2-bin and
// libsasl2-modules (.ci/run installs them) and root, as CI and the dev machines run.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { freePorts } from '../helpers/ports.js';

export interface PostfixProvider {
  /** Submission-like: STARTTLS required before AUTH and MAIL; SASL AUTH required to send anywhere. */
  readonly starttlsPort: number;
  /** TLS from the first byte (smtpd_tls_wrappermode, like 465); SASL AUTH required. */
  readonly implicitPort: number;
  /** Port 25-like: no AUTH, accepts mail for `domain` only; with relayTo, also relays for 127.0.0.0/8. */
  readonly plainPort: number;
  /** PEM CA that signed the server certificate (localhost, provider.test, 127.0.0.1). */
  readonly caFile: string;
  /** Cyrus SASL users, login name -> password, e.g. { 'alice@provider.test': 'alice-secret' }. */
  readonly users: Record<string, string>;
  /** The domain Postfix delivers into Maildirs: 'provider.test'. */
  readonly domain: string;
  /** The temp dir holding everything of this instance (etc/, queue/, mail/, maillog). */
  readonly dir: string;
  /**
   * Delivered messages for `user` ('alice' or 'alice@provider.test'), oldest first, raw as
   * virtual(8) wrote them: Return-Path, X-Original-To, Delivered-To and Received prepended,
   * lines ending in LF (Maildir files do not keep the CRLF of SMTP).
   */
  mailbox(user: string): Buffer[];
  /** Resolves once `user` has at least n messages; rejects after timeoutMs (default 10 s) with the log tail. */
  waitForMail(user: string, n: number, timeoutMs?: number): Promise<Buffer[]>;
  /** This instance's maillog_file, as Postfix wrote it so far. */
  log(): string;
  /** Stops Postfix, waits until none of its processes is left, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface PostfixProviderOptions {
  /** Relay non-local domains to [host]:port (relayhost) and accept relay from 127.0.0.0/8 on the plain port. */
  readonly relayTo?: { readonly host: string; readonly port: number };
  /** SASL users, each user@domain; default alice@ and bob@provider.test. Each also gets a mailbox. */
  readonly users?: Record<string, string>;
  /** More main.cf lines ("name = value"), written last so that they win. */
  readonly mainCf?: readonly string[];
}

const DOMAIN = 'provider.test';
const POSTFIX = '/usr/sbin/postfix';
const SASLPASSWD2 = '/usr/sbin/saslpasswd2';
const DEFAULT_USERS: Record<string, string> = { [`alice@${DOMAIN}`]: 'alice-secret', [`bob@${DOMAIN}`]: 'bob-secret' };
/** Mailboxes every instance has besides the SASL users'. */
const EXTRA_MAILBOXES = ['postmaster'];

export function postfixAvailable(): boolean {
  return fs.existsSync(POSTFIX) && fs.existsSync(SASLPASSWD2);
}

export async function startPostfixProvider(opts: PostfixProviderOptions = {}): Promise<PostfixProvider> {
  if (!postfixAvailable()) throw new Error(`${POSTFIX} or ${SASLPASSWD2} missing: run .ci/run (installs postfix, sasl2-bin, libsasl2-modules)`);
  const users = opts.users ?? DEFAULT_USERS;
  for (const login of Object.keys(users)) localPart(login);
  // Ports are picked free, closed and then bound by Postfix's master: another process may
  // take one in between. Postfix then fails to start ("bind ... Address already in use"),
  // or, when the other process is a second instance, joins it silently (Postfix listens with
  // SO_REUSEPORT) and startIn sees two listeners. Either way we try again with new ports.
  for (let attempt = 1; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-postfix-'));
    try {
      return await startIn(dir, users, opts);
    } catch (err) {
      const log = readLog(dir);
      await killGroup(running.get(dir) ?? masterPid(dir), 'SIGTERM');
      running.delete(dir);
      fs.rmSync(dir, { recursive: true, force: true });
      if (attempt < 3 && (err instanceof PortTaken || /Address already in use/.test(log))) continue;
      throw new Error(`Postfix provider did not start: ${(err as Error).message}\n--- maillog ---\n${log}`, { cause: err });
    }
  }
}

async function startIn(dir: string, users: Record<string, string>, opts: PostfixProviderOptions): Promise<PostfixProvider> {
  // Postfix's daemons run as the postfix user: they must traverse the temp dir.
  fs.chmodSync(dir, 0o755);
  const [starttlsPort, implicitPort, plainPort] = await freePorts(3) as [number, number, number];
  const postfixUser = await idOf('postfix');
  for (const sub of ['etc', 'etc/sasl', 'queue', 'tls']) fs.mkdirSync(path.join(dir, sub));
  fs.mkdirSync(path.join(dir, 'mail'));
  fs.chownSync(path.join(dir, 'mail'), postfixUser.uid, postfixUser.gid);

  const caFile = await makeCertificates(path.join(dir, 'tls'));
  await makeSaslDb(dir, users, postfixUser);
  const mailboxes = [...Object.keys(users).map(localPart), ...EXTRA_MAILBOXES];
  fs.writeFileSync(path.join(dir, 'etc/mailboxes'), [...new Set(mailboxes)].map((u) => `${u}@${DOMAIN} ${u}/\n`).join(''));
  fs.writeFileSync(path.join(dir, 'etc/main.cf'), mainCf(dir, postfixUser, opts.relayTo) + (opts.mainCf ?? []).map((l) => `${l}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'etc/master.cf'), masterCf({ starttlsPort, implicitPort, plainPort }));
  // Postfix rereads a table or main.cf modified within the current second until it looks
  // settled ("being edited"), which costs up to two seconds per start: date them back.
  const past = new Date(Date.now() - 60_000);
  for (const file of ['main.cf', 'master.cf', 'mailboxes']) fs.utimesSync(path.join(dir, 'etc', file), past, past);

  // `postfix start` runs master -w: it returns once the master has bound every port,
  // or fails with the reason in the maillog.
  await run(POSTFIX, ['-c', path.join(dir, 'etc'), 'start']);
  const pgid = masterPid(dir);
  if (!pgid) throw new Error('postfix start succeeded but wrote no queue/pid/master.pid');
  running.set(dir, pgid);
  for (const port of [starttlsPort, implicitPort, plainPort]) {
    if (listeners(port) !== 1) throw new PortTaken(`port ${port} has ${listeners(port)} listeners: taken by another process too`);
  }
  const ca = fs.readFileSync(caFile);
  await Promise.all([greeting(plainPort), greeting(starttlsPort), greeting(implicitPort, ca)]);
  return provider(dir, { starttlsPort, implicitPort, plainPort, caFile, users: { ...users } });
}

function mainCf(dir: string, owner: { uid: number; gid: number }, relayTo: PostfixProviderOptions['relayTo']): string {
  const relay = relayTo
    ? [`relayhost = [${relayTo.host}]:${relayTo.port}`, 'mynetworks = 127.0.0.0/8',
       `inet_protocols = ${relayTo.host.includes(':') ? 'all' : 'ipv4'}`]
    // Without relayTo nothing may leave: bounces to test senders are dropped (and logged)
    // instead of waiting on DNS.
    : ['mynetworks =', 'default_transport = discard:the test provider sends nothing out', 'inet_protocols = ipv4'];
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    // Postfix >= 3.4 logs without syslog through postlogd (master.cf "postlog").
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'inet_interfaces = 127.0.0.1',
    `myhostname = ${DOMAIN}`,
    // The domain is delivered by virtual(8) into Maildirs; listing it in mydestination too
    // would make Postfix warn and pick local(8), which needs real Unix accounts.
    'mydestination =',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    `virtual_mailbox_domains = ${DOMAIN}`,
    `virtual_mailbox_base = ${dir}/mail`,
    `virtual_mailbox_maps = texthash:${dir}/etc/mailboxes`,
    // virtual(8) refuses to deliver as root; the postfix user owns mail/.
    `virtual_uid_maps = static:${owner.uid}`,
    `virtual_gid_maps = static:${owner.gid}`,
    'virtual_minimum_uid = 1',
    ...relay,
    // The plain port; the AUTH ports override both lists in master.cf.
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    'smtpd_recipient_restrictions =',
    `smtpd_tls_cert_file = ${dir}/tls/server.crt`,
    `smtpd_tls_key_file = ${dir}/tls/server.key`,
    'smtpd_tls_security_level = may',
    'smtpd_tls_loglevel = 1',
    // "(using TLSv1.3 with cipher ...)" in Received: lets tests see that a hop used TLS.
    'smtpd_tls_received_header = yes',
    'smtpd_sasl_type = cyrus',
    'smtpd_sasl_path = smtpd',
    // Debian's Postfix ignores this and reads $config_directory/sasl/smtpd.conf: the same dir.
    `cyrus_sasl_config_path = ${dir}/etc/sasl`,
    'smtpd_sasl_auth_enable = no',
    // Tests make errors on purpose; a provider's tarpit would only slow them down.
    'smtpd_error_sleep_time = 0',
    '',
  ].join('\n');
}

function masterCf(ports: { starttlsPort: number; implicitPort: number; plainPort: number }): string {
  const auth = ['smtpd_sasl_auth_enable=yes', 'smtpd_tls_security_level=encrypt',
    'smtpd_relay_restrictions=permit_sasl_authenticated,reject', 'smtpd_recipient_restrictions=permit_sasl_authenticated,reject'];
  const inet = (port: number, name: string, o: string[]) =>
    [`127.0.0.1:${port} inet n - n - - smtpd`, ...[`syslog_name=postfix/${name}`, ...o].map((x) => `  -o ${x}`)].join('\n');
  // No service runs chrooted (column 5 = n): a chroot would need copies of the sasldb,
  // certificates and /etc files inside the queue directory.
  const unix = `pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd`;
  return [
    inet(ports.plainPort, 'smtp', []),
    inet(ports.starttlsPort, 'submission', [...auth, 'smtpd_tls_auth_only=yes']),
    inet(ports.implicitPort, 'smtps', [...auth, 'smtpd_tls_wrappermode=yes']),
    unix, '',
  ].join('\n');
}

/** A CA and a server certificate it signed, both P-256 (fast to make). Returns the CA file. */
async function makeCertificates(tlsDir: string): Promise<string> {
  const f = (name: string) => path.join(tlsDir, name);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30'];
  await run('openssl', ['req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-subj', '/CN=smarthost test provider CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-x509', ...key, '-keyout', f('server.key'), '-out', f('server.crt'),
    '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-subj', '/CN=localhost',
    '-addext', `subjectAltName=DNS:localhost,DNS:${DOMAIN},IP:127.0.0.1`,
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth']);
  return f('ca.crt');
}

/** smtpd (as the postfix user) checks passwords in a sasldb of its own, read through Cyrus auxprop. */
async function makeSaslDb(dir: string, users: Record<string, string>, owner: { uid: number; gid: number }): Promise<void> {
  const db = path.join(dir, 'sasldb2');
  fs.writeFileSync(path.join(dir, 'etc/sasl/smtpd.conf'),
    `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: ${db}\n`);
  for (const [login, password] of Object.entries(users)) {
    // -u sets the realm: the login name clients give is then "alice@provider.test".
    const [user, realm] = splitLogin(login);
    await run(SASLPASSWD2, ['-p', '-c', '-f', db, '-u', realm, user], password);
  }
  if (fs.existsSync(db)) fs.chownSync(db, owner.uid, owner.gid);
}

function provider(dir: string, fixed: Pick<PostfixProvider, 'starttlsPort' | 'implicitPort' | 'plainPort' | 'caFile' | 'users'>): PostfixProvider {
  let stopping: Promise<void> | undefined;
  const mailbox = (user: string) => readMaildir(path.join(dir, 'mail', localPart(user.includes('@') ? user : `${user}@${DOMAIN}`)));
  return {
    ...fixed,
    domain: DOMAIN,
    dir,
    mailbox,
    async waitForMail(user, n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = mailbox(user);
        if (got.length >= n) return got;
        if (Date.now() > deadline) {
          throw new Error(`${user}: ${got.length} of ${n} messages after ${timeoutMs} ms\n--- maillog (tail) ---\n${readLog(dir).split('\n').slice(-30).join('\n')}`);
        }
        await sleep(50);
      }
    },
    log: () => readLog(dir),
    stop() {
      stopping ??= (async () => {
        await run(POSTFIX, ['-c', path.join(dir, 'etc'), 'stop']).catch(() => undefined);
        await killGroup(running.get(dir));
        running.delete(dir);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** Maildir new/ and cur/ files, ordered by Postfix's "seconds.V…I…Musec.host" names. */
function readMaildir(maildir: string): Buffer[] {
  const files: Array<{ file: string; at: number }> = [];
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try { names = fs.readdirSync(path.join(maildir, sub)); } catch { continue; }
    for (const name of names) {
      const m = /^(\d+)\..*M(\d+)\./.exec(name);
      files.push({ file: path.join(maildir, sub, name), at: m ? Number(m[1]) * 1e6 + Number(m[2]) : 0 });
    }
  }
  return files.sort((a, b) => a.at - b.at).map((f) => fs.readFileSync(f.file));
}

function readLog(dir: string): string {
  try { return fs.readFileSync(path.join(dir, 'maillog'), 'utf8'); } catch { return ''; }
}

// ---- processes ----

/** Instances not stopped yet (dir -> master pid); killed if the test process exits without stop(). */
const running = new Map<string, number>();
function killAll(): void {
  for (const [dir, pgid] of running) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone already */ }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  running.clear();
}
process.on('exit', killAll);
// 'exit' does not run when a signal ends us (the test runner's timeout, Ctrl-C): clean up,
// then die of the same signal unless someone else handles it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function masterPid(dir: string): number | undefined {
  try { return Number(fs.readFileSync(path.join(dir, 'queue/pid/master.pid'), 'utf8').trim()) || undefined; } catch { return undefined; }
}

/**
 * The master leads its own process group; every daemon it forks stays in it. Sends signal
 * to the master (SIGTERM: it stops its daemons, as `postfix stop` does), then waits until
 * no live process is left in that group, SIGKILLing it after 5 s.
 */
async function killGroup(pgid: number | undefined, signal?: NodeJS.Signals): Promise<void> {
  if (!pgid) return;
  if (signal) try { process.kill(pgid, signal); } catch { /* not running */ }
  const deadline = Date.now() + 5000;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) {
      try { process.kill(-pgid, 'SIGKILL'); } catch { /* raced with exit */ }
      await sleep(100);
      if (groupMembers(pgid).length > 0) throw new Error(`Postfix processes left in group ${pgid}: ${groupMembers(pgid).join(' ')}`);
      return;
    }
    await sleep(25);
  }
}

/** Live (not zombie) processes whose process group is pgid, from /proc/PID/stat. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try { stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces, so split after ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message.trim()} ${stderr.trim()}`)) : resolve(stdout));
    // A command that exits without reading its stdin must not crash us with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

async function idOf(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

class PortTaken extends Error {}

/** Listening TCP sockets on port (any address) in this network namespace, from /proc/net/tcp{,6}. */
function listeners(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table = '';
    try { table = fs.readFileSync(file, 'utf8'); } catch { continue; }
    // "sl local_address rem_address st ...": state 0A is LISTEN.
    for (const line of table.split('\n').slice(1)) {
      const [, local, , st] = line.trim().split(/\s+/);
      if (local?.endsWith(hex) && st === '0A') n++;
    }
  }
  return n;
}


/** Connects (with TLS verified against ca when given) and waits for the 220 greeting. */
function greeting(port: number, ca?: Buffer, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = ca
      ? tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' })
      : net.connect({ port, host: '127.0.0.1' });
    let got = '';
    const done = (err?: Error) => { clearTimeout(timer); socket.destroy(); err ? reject(err) : resolve(); };
    const timer = setTimeout(() => done(new Error(`port ${port}: no 220 within ${timeoutMs} ms (got ${JSON.stringify(got)})`)), timeoutMs);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^220 .*\r\n/m.test(got)) { clearTimeout(timer); socket.end('QUIT\r\n'); resolve(); }
      else if (/^\d{3} .*\r\n/m.test(got)) done(new Error(`port ${port}: greeting ${JSON.stringify(got)}`));
    });
    socket.on('error', (err) => done(new Error(`port ${port}: ${err.message}`)));
  });
}

function splitLogin(login: string): [string, string] {
  const at = login.lastIndexOf('@');
  if (at < 1 || login.slice(at + 1) !== DOMAIN) throw new Error(`user ${login}: must be user@${DOMAIN}`);
  return [login.slice(0, at), DOMAIN];
}

/** The Maildir name of user@domain; limited to characters safe in a path. */
function localPart(address: string): string {
  const [user] = splitLogin(address);
  if (!/^[a-z0-9_+-][a-z0-9._+-]*$/i.test(user)) throw new Error(`user ${address}: local part must match [a-z0-9._+-]`);
  return user;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
