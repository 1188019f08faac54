// `smarthost sendmail` (also run as `sendmail` through a symlink): the
// command cron, mailx, PHP mail() and git send-email call. It writes the
// message into the spool itself (Postfix postdrop), so mail is kept while the
// daemon is down, then asks a running daemon to pick it up. Exit codes are
// sendmail's sysexits; nothing is printed on success, as cron expects.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { prepareSubmission, readLocalMessage } from '../cleanup/local-submission.js';
import type { Config } from '../config/types.js';
import { sendControl } from '../control/control-client.js';
import { LocalRecipients } from '../local/recipients.js';
import { parsePasswd } from '../local/passwd.js';
import { domainMatches, domainOf } from '../mail/address.js';
import { localClient, type Recipient } from '../mail/envelope.js';
import { fileSink, MailLog } from '../maillog/maillog.js';
import { openSpool } from '../queue/open-spool.js';
import type { Spool } from '../queue/spool.js';
import { intake } from '../cleanup/intake.js';
import { createListener } from '../smtpd/listener.js';
import { ConnectionLimits } from '../smtpd/connection-limits.js';
import { AuthThrottle } from '../auth/throttle.js';
import { UserStore } from '../auth/users-file.js';
import { parseCidr } from '../config/cidr.js';
import { EXIT, spoolConfigOrReport, UsageError, type Caller } from './common.js';
import * as queue from './queue.js';
import { parseSendmailArgs, type SendmailOptions } from './sendmail-args.js';
import { loopbackListener, submitOverSmtp, type RelayedSubmission } from './sendmail-relay.js';

export const help = `usage: smarthost sendmail [-t] [-i] [-f FROM] [-F NAME] [-C FILE] [RCPT...] < message
       sendmail -bs   (SMTP on standard input and output)
       sendmail -bp   (= mailq)      sendmail -bi   (= newaliases: check the aliases file)
Reads a message on standard input and queues it for the recipients on the
command line (with -t also those in To/Cc/Bcc; Bcc is removed). Works while
the daemon is stopped: the message waits in the spool. Link it as
/usr/sbin/sendmail for cron, mailx and PHP. Exit codes follow sysexits.h.`;

export const newaliasesHelp = `usage: newaliases [-C FILE]
       smarthost newaliases [-c FILE]
Checks the aliases file named by [local] aliases (aliases(5) format) and reports
the entries smarthost skips (|command, /file, :include:) and other problems.
smarthost reads the file directly and re-reads it when it changes: there is no
database to rebuild. Exit 65 if the file has problems, 66 if it cannot be read.`;

/**
 * What the verb prints and returns; `argv` is everything after "sendmail". `prog` names the
 * command in messages: "sendmail" when linked, else "smarthost sendmail".
 */
export async function run(argv: readonly string[], prog = 'sendmail'): Promise<number> {
  let opts: SendmailOptions;
  try {
    opts = parseSendmailArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`sendmail: ${e.message}\n${help}\n`); return EXIT.USAGE; }
    throw e;
  }
  const caller: Caller = { prog, option: prog.startsWith('smarthost') ? '-c' : '-C' };
  if (opts.mode === 'list') return queue.run({ ...(opts.config !== undefined ? { config: opts.config } : {}), caller }, ['list']);
  if (opts.mode === 'flush') return queue.run({ ...(opts.config !== undefined ? { config: opts.config } : {}), caller }, ['flush']);
  const config = spoolConfigOrReport(opts.config, caller);
  if (!config) return EXIT.CONFIG;
  if (opts.mode === 'newaliases') return newaliases(config);
  // root submitting for a daemon that runs as its own user: the queue files must be that user's
  const owner = queueOwner(config.dataDir);
  let spool: Spool | undefined;
  let unwritable: Error | undefined;
  try {
    spool = await openSpool(config.queue, config.dataDir, { role: 'submit', ...(owner ? { owner } : {}) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // no access: -bm hands the message to the running daemon instead (see sendmail-relay.ts)
    if (opts.mode !== 'deliver' || (code !== 'EACCES' && code !== 'EPERM')) {
      if (config.queue.store.kind !== 'files') return fail(EXIT.TEMPFAIL, `cannot use the queue database: ${(e as Error).message}; try again later`);
      return fail(EXIT.CANTCREAT, `cannot use the queue in ${config.dataDir}: ${(e as Error).message} (run sendmail as the user that owns the data_dir)`);
    }
    unwritable = e as Error;
  }
  try {
    if (opts.mode === 'smtp') {
      // only -bs logs (its smtpd session), to [log] file if there is one; never to stdout, the SMTP channel
      const log = new MailLog({ format: config.log.format, hostname: config.hostname, sink: config.log.file ? fileSink(config.log.file) : { write: () => undefined } });
      return await smtpOnStdio(config, spool!, log);
    }
    return await submit(config, spool, opts, unwritable);
  } finally {
    await spool?.close();
  }
}

/** The owner of data_dir/queue when we are root and it is somebody else, else undefined. */
function queueOwner(dataDir: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const st = fs.statSync(path.join(dataDir, 'queue'));
    return st.uid === 0 ? undefined : { uid: st.uid, gid: st.gid };
  } catch { return undefined; }
}

function fail(code: number, message: string): number {
  process.stderr.write(`sendmail: ${message}\n`);
  return code;
}

interface Who { readonly name: string; readonly uid: number; readonly fullName?: string }

function whoAmI(): Who {
  const info = os.userInfo();
  let fullName: string | undefined;
  try { fullName = parsePasswd(fs.readFileSync('/etc/passwd', 'utf8')).get(info.username.toLowerCase())?.fullName || undefined; } catch { /* no GECOS name then */ }
  return { name: info.username, uid: info.uid, ...(fullName ? { fullName } : {}) };
}

/** Bare names get a domain: the sender the host's name (Postfix myorigin), recipients the first local domain. */
function qualify(address: string, domain: string): string {
  return address === '' || address.includes('@') ? address : `${address}@${domain}`;
}

async function readStdin(limit: number): Promise<{ data: Buffer; tooBig: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    n += c.length;
    if (n <= limit) chunks.push(c);
  }
  return { data: Buffer.concat(chunks), tooBig: n > limit };
}

async function submit(config: Config, spool: Spool | undefined, opts: SendmailOptions, unwritable?: Error): Promise<number> {
  const me = whoAmI();
  const localDomain = config.local.domains[0] ?? config.hostname;
  const sender = qualify(opts.from ?? me.name, config.hostname);
  const { data, tooBig } = await readStdin(config.limits.messageSize);
  if (tooBig) return fail(EXIT.DATAERR, `message is larger than the limit of ${config.limits.messageSize} bytes (limits.message_size)`);
  const sub = prepareSubmission(readLocalMessage(data, opts.ignoreDots), {
    extractRecipients: opts.extractRecipients,
    facts: { hostname: config.hostname, sender, now: new Date(), ...(opts.fullName ?? me.fullName ? { fullName: (opts.fullName ?? me.fullName)! } : {}) },
  });
  const wanted = [...opts.recipients, ...sub.headerRecipients].map((r) => qualify(r, localDomain));
  const seen = new Set<string>();
  const recipients = wanted.filter((r) => { const k = r.toLowerCase(); if (seen.has(k)) return false; seen.add(k); return true; });
  if (!recipients.length) {
    return fail(EXIT.USAGE, 'no recipient addresses found in message header');
  }
  for (const r of recipients) {
    if (!/^[^\s<>()\\,;:]+@[^\s<>()\\,;:@]+$/u.test(r)) return fail(EXIT.DATAERR, `<${r}>: bad recipient address syntax`);
  }
  const local = LocalRecipients.from(config.local);
  for (const r of recipients) {
    if (!domainMatches(domainOf(r), config.local.domains)) continue;
    const known = local.exists(r);
    if (known === 'unavailable') return fail(EXIT.TEMPFAIL, `<${r}>: temporary lookup failure (cannot read the aliases or passwd file)`);
    if (!known) return fail(EXIT.NOUSER, `<${r}>: User unknown in local recipient table`);
  }
  const relayed = (why: string) => viaDaemon(config, {
    sender, recipients, message: sub.message,
    ...(opts.notify ? { notify: opts.notify } : {}), ...(opts.ret ? { ret: opts.ret } : {}), ...(opts.envid ? { envid: opts.envid } : {}),
  }, opts.verbose, why);
  if (unwritable || !spool) return relayed(unwritable?.message ?? 'no queue');
  const client = localClient('', me.uid);
  const rcpts: Recipient[] = recipients.map((address) => ({ address, ...(opts.notify ? { notify: opts.notify } : {}) }));
  const result = await intake(Readable.from([sub.message]), {
    sender, recipients: rcpts, client, arrived: new Date().toISOString(),
    ...(opts.ret ? { ret: opts.ret } : {}), ...(opts.envid ? { envid: opts.envid } : {}),
    ...(opts.body ?? (sub.eightBit ? '8BITMIME' : undefined) ? { body: (opts.body ?? '8BITMIME') as '7BIT' | '8BITMIME' } : {}),
    ...([sender, ...recipients].some((a) => /[^\x00-\x7f]/.test(a)) ? { smtputf8: true } : {}),
  }, spool, config.limits, { by: config.hostname, showAuthUser: config.auth.authenticatedHeader }, () => undefined);
  if (!result.ok) {
    const text = `${result.reply.code} ${result.reply.enhanced} ${result.reply.text}`;
    const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EACCES' || code === 'EPERM') return relayed(result.error!.message);
    if (result.storage) return fail(EXIT.TEMPFAIL, `cannot queue the message: ${result.error?.message ?? text}; try again later`);
    return fail(EXIT.DATAERR, `message refused: ${text}`);
  }
  const id = result.envelope.id;
  // tell a running daemon; with none running, it finds the message when it starts
  await sendControl(config.dataDir, { op: 'pickup', ids: [id] }, 10_000).catch(() => undefined);
  if (opts.verbose) process.stderr.write(`sendmail: queued as ${id}\n`);
  return EXIT.OK;
}

/** No write access to the queue: hand the message to the running daemon over loopback SMTP. */
async function viaDaemon(config: Config, sub: RelayedSubmission, verbose: boolean, why: string): Promise<number> {
  const listen = loopbackListener(config);
  if (!listen) return fail(EXIT.NOPERM, `cannot write the queue (${why}), and no [[listen]] on loopback trusts 127.0.0.1 to hand the message to the daemon; run sendmail as the user that owns ${config.dataDir}`);
  try {
    const reply = await submitOverSmtp(config, listen, sub);
    if (verbose) process.stderr.write(`sendmail: handed to the daemon: ${reply}\n`);
    return EXIT.OK;
  } catch (e) {
    return fail(EXIT.TEMPFAIL, `cannot write the queue (${why}) and ${(e as Error).message}; is smarthost running? try again later`);
  }
}

/** -bs: one SMTP session on stdin/stdout through the same smtpd code as a listener, as a trusted local client. */
async function smtpOnStdio(config: Config, spool: Spool, log: MailLog): Promise<number> {
  const listen = {
    address: 'stdio', host: '127.0.0.1', port: 0, tls: 'none' as const, auth: 'none' as const, allowPlaintextAuth: false, pregreetMs: 0,
    trustedNetworks: [parseCidr('127.0.0.0/8')!],
  };
  const ids: string[] = [];
  const local = LocalRecipients.from(config.local);
  const server = createListener(listen, {
    hostname: config.hostname, limits: config.limits, localDomains: config.local.domains, spool, log,
    localExists: (rcpt) => local.exists(rcpt),
    users: new UserStore(config.auth.usersFile), throttle: new AuthThrottle(config.limits.authFailures),
    connections: new ConnectionLimits(1, 1), minTlsVersion: config.tls.minVersion,
    onQueued: (e) => { ids.push(e.id); },
  });
  const io = stdioSocket();
  // smtp-server's greeting timer is unref'd: with stdin already at its end nothing else would keep us alive
  const alive = setInterval(() => undefined, 60_000);
  await new Promise<void>((resolve) => {
    io.once('close', () => { clearInterval(alive); resolve(); });
    (server as unknown as { connect(s: Duplex, o: object): void }).connect(io, { remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0 });
  });
  if (ids.length) await sendControl(config.dataDir, { op: 'pickup', ids }, 10_000).catch(() => undefined);
  return EXIT.OK;
}

/**
 * stdin + stdout as the socket smtp-server expects (it checks readyState
 * before writing). Input is held back until the greeting is out: a script
 * piping a whole dialog would otherwise be refused as an early talker.
 */
function stdioSocket(): Duplex {
  let greeted = false;
  const early: Array<Buffer | null> = [];
  const feed = (d: Buffer | null) => { if (!greeted) early.push(d); else if (!io.push(d) && d) process.stdin.pause(); };
  const io = new Duplex({
    read() { process.stdin.resume(); },
    write(chunk, _enc, cb) {
      process.stdout.write(chunk, cb);
      if (!greeted) { greeted = true; early.splice(0).forEach(feed); }
    },
    final(cb) { cb(); },
  });
  process.stdin.on('data', (d: Buffer) => feed(d));
  process.stdin.on('end', () => feed(null));
  Object.assign(io, { readyState: 'open', remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0, setKeepAlive() { return io; }, setTimeout() { return io; } });
  io.once('finish', () => { process.stdin.pause(); io.destroy(); });
  return io;
}

/** -bi / newaliases: smarthost reads the aliases file directly; this checks it and says what it found. */
function newaliases(config: Config): number {
  const problems: string[] = [];
  const local = LocalRecipients.from(config.local, (m) => problems.push(m));
  const inline = Object.keys(config.local.aliases).length;
  if (config.local.aliasesFile === undefined) {
    process.stdout.write(`newaliases: ${inline} aliases in the configuration; no aliases file to check (smarthost reads aliases directly, nothing to rebuild)\n`);
    return EXIT.OK;
  }
  const count = local.countFileAliases();
  if (count === undefined) return fail(EXIT.NOINPUT, `cannot read the aliases file ${config.local.aliasesFile}`);
  for (const p of problems) process.stderr.write(`newaliases: ${p}\n`);
  process.stdout.write(`newaliases: ${config.local.aliasesFile}: ${count} aliases${problems.length ? `, ${problems.length} problem${problems.length === 1 ? '' : 's'}` : ''}; smarthost reads it directly, nothing to rebuild\n`);
  return problems.length ? EXIT.DATAERR : EXIT.OK;
}
