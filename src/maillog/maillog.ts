// One function per log event, one line per call, in Postfix's maillog shape
// ("Nov 22 10:00:01 relay smarthost/smtpd[812]: ID: ...") or as JSON lines
// with the same fields, so pflogsumm and `grep QUEUEID` keep working.
import fs from 'node:fs';
import type { Reply } from '../mail/reply.js';
import { formatReply } from '../mail/reply.js';
import { waitText } from '../mail/replies.js';
import type { StsEvent } from '../mta-sts/mta-sts.js';

export type Program = 'master' | 'smtpd' | 'cleanup' | 'qmgr' | 'smtp' | 'local' | 'bounce' | 'postsuper' | 'sendmail' | 'pickup' | 'http';

/** One log event as the JSON format writes it; what `subscribe()` listeners get, whatever the format. */
export type LogEvent = Readonly<Record<string, unknown>> & { readonly time: string; readonly program: string; readonly event: string; readonly message: string; readonly queue_id?: string };

export interface LogSink {
  write(line: string): void;
  /** After log rotation (SIGUSR1, SIGHUP): later lines go to a file opened anew under the configured name. */
  reopen?(): void;
  /** The sink is replaced (a reload changed [log]): flush what is written, then let go of the file. */
  close?(): void;
}

export interface LogOptions {
  readonly format: 'postfix' | 'json';
  readonly hostname: string;
  readonly sink?: LogSink;
}

/** A client as Postfix prints it: "localhost[127.0.0.1]". */
export interface Peer { readonly hostname: string; readonly address: string }
const peer = (p: Peer) => `${p.hostname}[${p.address}]`;
const ESCAPES: Record<string, string> = { '\r': '\\r', '\n': '\\n', '\t': '\\t', '\\': '\\\\' };
/** A client's raw bytes for one log line, C-style escaped as Postfix logs them. */
const escapeBytes = (t: string) => t.replace(/[^\x20-\x7e]|\\/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');
function syslogTime(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * `[log] file`, appended to. reopen() is the logrotate contract (nginx's USR1, Postfix's
 * postlog): after `mv maillog maillog.1`, lines written before the call still go to the renamed
 * file (the old stream flushes and closes), later ones to a new `maillog`, so every line lands in
 * exactly one of the two.
 */
export function fileSink(file: string): LogSink {
  const open = () => {
    const s = { stream: fs.createWriteStream(file, { flags: 'a', mode: 0o640 }), failed: false };
    // a log file that cannot be opened or written must not take the process down
    s.stream.on('error', (e) => { if (!s.failed) process.stderr.write(`smarthost: cannot write the log file ${file}: ${e.message}\n`); s.failed = true; });
    return s;
  };
  let current = open();
  return {
    write: (line) => { if (!current.failed) current.stream.write(line); },
    reopen: () => { const old = current; current = open(); old.stream.end(); },
    close: () => { current.stream.end(); },
  };
}

/**
 * Lines logged in one turn of the event loop leave in one write. stdout on a
 * pipe or file is written synchronously, one system call per line, which
 * under load costs the sessions more than the logging is worth. Whatever is
 * buffered is written at exit.
 */
function batched(write: (text: string) => void): LogSink {
  let lines: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!lines.length) return;
    const text = lines.join('');
    lines = [];
    write(text);
  };
  process.once('exit', flush);
  return {
    write(line) {
      lines.push(line);
      if (!scheduled) { scheduled = true; setImmediate(flush); }
    },
  };
}

export const stdoutSink: LogSink = batched((text) => { process.stdout.write(text); });

export class MailLog {
  private shortHost: string;
  private sink: LogSink;
  private format: LogOptions['format'];
  private readonly listeners = new Set<(e: LogEvent) => void>();
  constructor(opts: LogOptions) {
    this.shortHost = opts.hostname.split('.')[0] || opts.hostname;
    this.sink = opts.sink ?? stdoutSink;
    this.format = opts.format;
  }

  /**
   * A reload changed [log] (or hostname): later lines use these. Every module holds this one
   * MailLog, so the change applies everywhere at once. A new sink replaces (and closes) the old.
   */
  reconfigure(opts: LogOptions): void {
    this.shortHost = opts.hostname.split('.')[0] || opts.hostname;
    this.format = opts.format;
    if (opts.sink && opts.sink !== this.sink) {
      const old = this.sink;
      this.sink = opts.sink;
      old.close?.();
    }
  }

  /** Log rotation: reopen [log] file by its name (nothing to do on stdout). */
  reopen(): void { this.sink.reopen?.(); }

  /** Every later event, as a JSON-shaped object (the API's live log and its charts); returns the unsubscribe. */
  subscribe(listener: (e: LogEvent) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** The one place a line is written; `fields` are what the JSON form carries. */
  private emit(program: Program, event: string, text: string, fields: Record<string, unknown>, queueId?: string): void {
    const now = new Date();
    const record = this.format === 'json' || this.listeners.size ? {
      time: now.toISOString(), host: this.shortHost, program: `smarthost/${program}`, pid: process.pid,
      ...(queueId ? { queue_id: queueId } : {}), event, ...fields, message: text,
    } : undefined;
    for (const l of this.listeners) { try { l(record!); } catch { /* a listener never stops the log */ } }
    if (this.format === 'json') {
      this.sink.write(JSON.stringify(record) + '\n');
      return;
    }
    const prefix = queueId ? `${queueId}: ` : '';
    this.sink.write(`${syslogTime(now)} ${this.shortHost} smarthost/${program}[${process.pid}]: ${prefix}${text}\n`);
  }

  // master ------------------------------------------------------------------
  started(version: string, configSource: string): void {
    this.emit('master', 'started', `daemon started -- version ${version}, configuration ${configSource}`, { version, config: configSource });
  }
  listening(address: string, tls: string, auth: string): void {
    this.emit('master', 'listening', `listening on ${address} (tls=${tls}, auth=${auth})`, { address, tls, auth });
  }
  metricsListening(url: string): void {
    this.emit('master', 'metrics', `metrics on ${url}`, { url });
  }
  stopping(reason: string): void {
    this.emit('master', 'stopping', `daemon stopping: ${reason}`, { reason });
  }
  reloaded(configSource: string): void {
    this.emit('master', 'reloaded', `reload -- configuration ${configSource}`, { config: configSource });
  }
  stopped(): void { this.emit('master', 'stopped', 'daemon stopped', {}); }
  /** The last line at the old destination when a reload moves the log: where it goes on. */
  logMoved(to: string, format: string): void {
    this.emit('master', 'log_moved', `log continues ${to === '' ? 'on stdout' : `in ${to}`} (format ${format})`, { to: to || 'stdout', format });
  }
  warning(message: string, program: Program = 'master'): void {
    this.emit(program, 'warning', `warning: ${message}`, {});
  }
  fatal(message: string): void { this.emit('master', 'fatal', `fatal: ${message}`, {}); }
  spoolRecovered(messages: number, discarded: number, corrupt: number): void {
    this.emit('qmgr', 'recovered', `queue recovered: ${messages} message${messages === 1 ? '' : 's'} waiting, ${discarded} unacknowledged partial file${discarded === 1 ? '' : 's'} discarded${corrupt ? `, ${corrupt} corrupt moved to corrupt/` : ''}`,
      { messages, discarded, corrupt });
  }

  // smtpd -------------------------------------------------------------------
  connect(p: Peer): void {
    this.emit('smtpd', 'connect', `connect from ${peer(p)}`, { client: p.hostname, client_ip: p.address });
  }
  disconnect(p: Peer, counts: Readonly<Record<string, string>>): void {
    const list = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ');
    this.emit('smtpd', 'disconnect', `disconnect from ${peer(p)}${list ? ' ' + list : ''}`, { client: p.hostname, client_ip: p.address, counts });
  }
  client(id: string, p: Peer, sasl?: { method: string; username: string }): void {
    const s = sasl ? `, sasl_method=${sasl.method}, sasl_username=${sasl.username}` : '';
    this.emit('smtpd', 'client', `client=${peer(p)}${s}`,
      { client: p.hostname, client_ip: p.address, ...(sasl ? { sasl_method: sasl.method, sasl_username: sasl.username } : {}) }, id);
  }
  /** Postfix: "NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 <x>: Relay access denied; from=<a> to=<b> proto=ESMTP helo=<h>" */
  reject(stage: string, p: Peer, r: Reply, ctx: { from?: string; to?: string; proto: string; helo: string }, queueId?: string): void {
    const parts = [
      ctx.from !== undefined ? `from=<${ctx.from}>` : '',
      ctx.to !== undefined ? `to=<${ctx.to}>` : '',
      `proto=${ctx.proto}`, `helo=<${ctx.helo}>`,
    ].filter(Boolean).join(' ');
    const text = `${queueId ? '' : 'NOQUEUE: '}reject: ${stage} from ${peer(p)}: ${formatReply(r)}; ${parts}`;
    this.emit('smtpd', 'reject', text, {
      stage, client: p.hostname, client_ip: p.address, code: r.code, dsn: r.enhanced, reply: r.text,
      ...(ctx.from !== undefined ? { from: ctx.from } : {}), ...(ctx.to !== undefined ? { to: ctx.to } : {}), proto: ctx.proto, helo: ctx.helo,
    }, queueId);
  }
  authFailed(p: Peer, method: string, username: string, reason: string): void {
    this.emit('smtpd', 'auth_failed', `warning: ${peer(p)}: SASL ${method} authentication failed: ${reason}, sasl_username=${username}`,
      { client: p.hostname, client_ip: p.address, sasl_method: method, sasl_username: username, reason });
  }
  /**
   * limits.auth_failures reached (`started`: by this failure) or a blocked client tried AUTH again:
   * for how long, and the command that lifts it.
   */
  authBlocked(p: Peer, waitMs: number, rate: { count: number; window: string }, started: boolean): void {
    const wait = waitText(waitMs);
    const text = started
      ? `warning: ${peer(p)}: ${rate.count} failed authentication attempts within ${rate.window}: AUTH from ${p.address} is refused for ${wait} (smarthost auth unblock ${p.address} lifts it)`
      : `warning: ${peer(p)}: AUTH refused, too many failed authentication attempts; try again in ${wait} (smarthost auth unblock ${p.address} lifts it)`;
    this.emit('smtpd', started ? 'auth_blocked' : 'auth_refused', text,
      { client: p.hostname, client_ip: p.address, retry_after_seconds: Math.ceil(waitMs / 1000), failures: rate.count, window: rate.window });
  }
  /**
   * limits.auth_failures_per_account reached (`started`: by this failure), or an address that never logged in
   * as this account tried while it is closed: for how long, and the command that lifts it.
   */
  accountBlocked(p: Peer, username: string, waitMs: number, rate: { count: number; window: string }, started: boolean): void {
    const wait = waitText(waitMs);
    const lift = `(smarthost auth unblock --user ${username} lifts it)`;
    const text = started
      ? `warning: ${peer(p)}: ${rate.count} failed authentication attempts for sasl_username=${username} within ${rate.window}: only addresses that logged in as ${username} recently may log in as it, for ${wait} ${lift}`
      : `warning: ${peer(p)}: AUTH refused for sasl_username=${username}, too many failed authentication attempts for this account; try again in ${wait} ${lift}`;
    this.emit('smtpd', started ? 'account_blocked' : 'account_refused', text,
      { client: p.hostname, client_ip: p.address, sasl_username: username, retry_after_seconds: Math.ceil(waitMs / 1000), failures: rate.count, window: rate.window });
  }
  /** `smarthost auth unblock`: the failure counts of these addresses were forgotten. */
  authUnblocked(addresses: readonly string[]): void {
    this.emit('smtpd', 'auth_unblocked', `AUTH block lifted for ${addresses.join(', ')} (smarthost auth unblock)`, { addresses });
  }
  /** A session ended by us: timeout, too many errors, limits. */
  dropped(p: Peer, why: string, after: string): void {
    this.emit('smtpd', 'dropped', `${why} after ${after} from ${peer(p)}`, { client: p.hostname, client_ip: p.address, reason: why, after });
  }
  /** Postfix postscreen's line: "PREGREET 11 after 0.05 from [192.0.2.1]:41234: EHLO x\r\n" (the early input, escaped, at most 100 bytes). */
  pregreet(p: Peer, port: number, early: { bytes: number; seconds: number; text: string }): void {
    const shown = escapeBytes(early.text.slice(0, 100));
    this.emit('smtpd', 'pregreet', `PREGREET ${early.bytes} after ${early.seconds.toFixed(2)} from [${p.address}]:${port}: ${shown}`,
      { client: p.hostname, client_ip: p.address, client_port: port, bytes: early.bytes, seconds: early.seconds, early: early.text.slice(0, 100) });
  }
  /** Postfix tlsmgr/smtpd: "SSL_accept error from host[ip]: reason" (a TLS handshake that failed or took too long). */
  tlsFailed(p: Peer, reason: string): void {
    this.emit('smtpd', 'tls_failed', `SSL_accept error from ${peer(p)}: ${reason}`, { client: p.hostname, client_ip: p.address, reason });
  }
  lostConnection(p: Peer, after: string): void {
    this.emit('smtpd', 'lost_connection', `lost connection after ${after} from ${peer(p)}`, { client: p.hostname, client_ip: p.address, after });
  }
  storageError(id: string, message: string): void {
    this.emit('cleanup', 'storage_error', `warning: queue file write error: ${message}`, { error: message }, id);
  }

  // cleanup / qmgr ----------------------------------------------------------
  messageId(id: string, messageId: string): void {
    this.emit('cleanup', 'message_id', `message-id=${messageId}`, { message_id: messageId }, id);
  }
  /** Postfix pickup: "uid=0 from=<root>" for mail that `smarthost sendmail` put in the spool. */
  pickup(id: string, uid: number | undefined, from: string): void {
    this.emit('pickup', 'pickup', `${uid !== undefined ? `uid=${uid} ` : ''}from=<${from}>`, { ...(uid !== undefined ? { uid } : {}), from }, id);
  }
  queued(id: string, from: string, size: number, nrcpt: number): void {
    this.emit('qmgr', 'queued', `from=<${from}>, size=${size}, nrcpt=${nrcpt} (queue active)`, { from, size, nrcpt }, id);
  }
  removed(id: string, program: Program = 'qmgr'): void {
    this.emit(program, 'removed', 'removed', {}, id);
  }

  // smtp / local / bounce ---------------------------------------------------
  /** Postfix: "to=<b@x>, relay=host[ip]:port, delay=0.95, delays=a/b/c/d, dsn=2.0.0, status=sent (250 Ok)" */
  delivery(id: string, program: 'smtp' | 'local', d: Delivery): void {
    const text = `to=<${d.to}>, relay=${d.relay}, delay=${d.delay}, delays=${d.delays.join('/')}, dsn=${d.dsn}, status=${d.status} (${d.reason})`;
    this.emit(program, 'delivery', text, { to: d.to, relay: d.relay, delay: Number(d.delay), delays: d.delays.map(Number), dsn: d.dsn, status: d.status, reason: d.reason }, id);
  }
  /** Postfix qmgr: "from=<a@x>, status=expired, returned to sender" */
  expired(id: string, from: string): void {
    this.emit('qmgr', 'expired', `from=<${from}>, status=expired, returned to sender`, { from }, id);
  }
  /** Postfix bounce: "sender non-delivery notification: NEWID" */
  notice(id: string, kind: 'non-delivery' | 'delay' | 'delivery status', noticeId: string): void {
    this.emit('bounce', 'notice', `sender ${kind} notification: ${noticeId}`, { kind, notice_id: noticeId }, id);
  }
  /** A bounce that could not be delivered: it is not bounced again; this line is the postmaster's notice. */
  doubleBounce(id: string, to: string, reason: string): void {
    this.emit('bounce', 'double_bounce', `postmaster: undeliverable notification to <${to}> discarded, a bounce never bounces (${reason})`, { to, reason }, id);
  }
  /** A recipient refused as nonexistent: later mail to it bounces without contacting the upstream. */
  suppressed(id: string, to: string, dsn: string, expires: string): void {
    this.emit('smtp', 'suppressed', `to=<${to}>, dsn=${dsn}, added to the suppression list until ${expires.slice(0, 10)} (smarthost suppression del ${to} to remove)`, { to, dsn, expires }, id);
  }
  /** A change made through the HTTP API, with the name of the token that made it. */
  apiAction(token: string, client: string, method: string, path: string, status: number): void {
    this.emit('http', 'api_action', `token=${token} client=[${client}] ${method} ${path}: ${status}`, { token, client_ip: client, method, path, status });
  }
  /** A request whose bearer token was missing or unknown. */
  apiAuthFailed(client: string, path: string, why: string): void {
    this.emit('http', 'api_auth_failed', `warning: [${client}]: API token refused for ${path}: ${why}`, { client_ip: client, path, reason: why });
  }
  httpListening(url: string): void {
    this.emit('master', 'http', `API and console on ${url}`, { url });
  }
  /**
   * MTA-STS: a policy fetched (or not, and what stays in force), what testing mode would have
   * refused, a cache that cannot be written. Refusals under enforce are in the deferral's reason.
   */
  mtaSts(e: StsEvent): void {
    if (e.kind === 'refused') return;
    const warn = !(e.kind === 'fetch' && e.outcome === 'ok');
    this.emit('smtp', 'mta_sts', `${warn ? 'warning: ' : ''}${e.text}`, {
      kind: e.kind, domain: e.domain, ...(e.kind === 'fetch' ? { outcome: e.outcome } : {}), ...(e.kind === 'testing' ? { why: e.why } : {}),
    });
  }
  /** qmgr actions asked for through `smarthost queue` (flush, hold, release). */
  queueAction(id: string, action: 'hold' | 'release' | 'flush'): void {
    const text = action === 'hold' ? 'placed on hold' : action === 'release' ? 'released from hold' : 'flushed: deferred recipients tried now';
    this.emit(action === 'flush' ? 'qmgr' : 'postsuper', action, text, {}, id);
  }
}

export interface Delivery {
  readonly to: string;
  readonly relay: string;
  readonly delay: string;
  readonly delays: readonly [string, string, string, string];
  readonly dsn: string;
  readonly status: 'sent' | 'deferred' | 'bounced';
  readonly reason: string;
}
