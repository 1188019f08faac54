// Per-connection rules that smtp-server does not enforce by itself, applied at
// the two narrow points every command and reply pass through: our Connection's
// commandFilter (before smtp-server parses a command) and replyFilter (every reply).
//  - replies in Postfix wording with our enhanced status codes (replies.ts)
//  - 501 for control characters in EHLO/HELO/MAIL/RCPT
//  - starttls-required: only EHLO/HELO/STARTTLS/NOOP/RSET/QUIT before TLS
//  - AUTH only where it is offered (after TLS, unless allow_plaintext_auth)
//  - a deadline per command and per DATA phase, so a client trickling one byte
//    a second cannot hold a slot (smtp-server's idle timer resets on every byte)
//  - too many errors (4xx/5xx replies) ends the session, as Postfix's
//    smtpd_hard_error_limit does
//  - the bytes of the MAIL/RCPT line under way, for the listener (envelopeLine)
//  - too many MAIL commands in one session ends it (Exim smtp_accept_max_per_connection)
//  - a command line ending in a bare LF ends it (Postfix smtpd_forbid_bare_newline),
//    where the listener records line endings (line-ledger.ts)
// The library state it reads (a handler pending, AUTH continuing, a STARTTLS handshake…)
// comes from SeamConnection (smtp-server-seam.ts), and smtp-server's canned replies are
// recognised by libraryReply() there, whose texts smtp-server-seam.test.ts checks.
import type { Reply } from '../mail/reply.js';
import { replies } from '../mail/replies.js';
import type { LineLedger } from './line-ledger.js';
import type { Connection, ReplyFilter } from './smtpd-server.js';
import { libraryReply } from './smtp-server-seam.js';

/** The parts of our Connection (smtpd-server.ts) this module touches. */
export type GuardedConnection = Pick<Connection,
  'reply' | 'close' | 'secure' | 'session' | 'once' | 'commandFilter' | 'replyFilter' | 'dispatch' | 'whenWritable' |
  'upgrading' | 'authContinues' | 'handlerPending' | 'inData' | 'awaitingDataReply' | 'ended' | 'socket'>;

export interface GuardRules {
  readonly hostname: string;
  readonly starttlsRequired: boolean;
  /** Whether AUTH may be used right now; undefined means yes. Otherwise the refusal. */
  readonly authRefusal: () => Reply | undefined;
  readonly idleTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly maxErrors: number;
  /** Junk commands (NOOP, VRFY, ETRN, RSET) allowed before each one counts as an error. */
  readonly maxJunk: number;
  /** MAIL commands one session may give; the next gets 421 and the session ends. */
  readonly maxMessages: number;
  /** How each command line ended; absent: bare LF is not checked (trusted clients, or forbid_bare_newline = false). */
  readonly lineEnds?: LineLedger;
  /** Told when the guard itself ends the session (for the log). */
  readonly onDrop: (why: string, after: string) => void;
  /** True once the daemon is stopping: no new transaction may start. */
  readonly draining?: () => boolean;
}

const PRE_TLS = new Set(['EHLO', 'HELO', 'STARTTLS', 'NOOP', 'RSET', 'QUIT']);
const CHECKED = new Set(['EHLO', 'HELO', 'MAIL', 'RCPT']);
/** Postfix smtpd_junk_command_limit counts these. */
const JUNK = new Set(['NOOP', 'VRFY', 'ETRN', 'RSET']);
/**
 * A web page or proxy talking to the SMTP port (cross-protocol attacks): smtp-server catches
 * "GET /x HTTP/1.1" but not "CONNECT host:443 HTTP/1.1" or a method with an absolute URL.
 */
const HTTP = /^(CONNECT|GET|HEAD|POST|PUT|DELETE|OPTIONS|TRACE|PATCH) \S+ HTTP\/\d(\.\d)?$/i;
/** Commands a client may pipeline (RFC 2920): their replies go out together. */
const PIPELINED = new Set(['MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP']);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/** smtp-server's own canned replies (smtp-server-seam.ts), mapped to our catalogue. */
function translate(code: number, text: string, host: string): Reply | { code: number; text: string } | undefined {
  switch (libraryReply(code, text)) {
    case 'timeout': return replies.timeout(host);
    case 'too many unrecognized': return replies.tooManyErrors(host);
    case 'unrecognized': return replies.commandNotRecognized();
    case 'line too long': return replies.lineTooLong(host);
    case 'shutting down': return replies.shuttingDown(host);
    case 'bad sender': return replies.badSenderSyntax();
    case 'bad recipient': return replies.badRecipientSyntax();
    case 'too many recipients': return replies.tooManyRecipients();
    case 'size exceeded': return replies.sizeExceeded();
    case 'ok': return { code, text: 'Ok' };
    case undefined: return undefined;
  }
}

export interface Guard {
  /** Per-command counts for the disconnect log line: "ehlo=1 mail=1 rcpt=0/1 ...". */
  readonly counts: () => Record<string, string>;
  readonly lastCommand: () => string;
  /**
   * The bytes of the MAIL or RCPT command smtp-server is handling now (it handles one command
   * at a time), for the listener's onMailFrom/onRcptTo: smtp-server's parsed address is lossy.
   */
  readonly envelopeLine: () => Buffer | undefined;
  readonly stop: () => void;
  /** The daemon is stopping: end the session now if it is between transactions, else after the one under way. */
  readonly drain: () => void;
}

export function guardConnection(conn: GuardedConnection, rules: GuardRules): Guard {
  return new SessionGuard(conn, rules);
}

type ReplyArgs = Parameters<ReplyFilter>;

/** A command the guard answers itself: the reply, why it ends the session (for the log), and whether it closes it at once. */
interface Refusal {
  readonly reply: Reply;
  readonly drop?: string;
  /** The command named in the log line; default: the last command. */
  readonly after?: string;
  readonly close?: boolean;
}

/** One session's guard: the state the two filters share (counts, limits, the deadline). */
class SessionGuard implements Guard {
  /** Final replies under 400 per command, and commands given, for the disconnect line (by the name in this.last). */
  private readonly ok = new Map<string, number>();
  private readonly total = new Map<string, number>();
  private last = 'CONNECT';
  private envelope: Buffer | undefined;
  private errors = 0;
  private junk = 0;
  private mails = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** smtp-server emits 'connect' as it greets (the public sign of its private _ready). */
  private greeted = false;
  private corked = false;

  constructor(private readonly conn: GuardedConnection, private readonly rules: GuardRules) {
    conn.once('connect', () => { this.greeted = true; });
    conn.replyFilter = (code, data, context, send) => this.onReply(code, data, context, send);
    conn.commandFilter = (command, callback) => this.onCommand(command, callback);
    this.arm(rules.idleTimeoutMs);
  }

  counts(): Record<string, string> {
    const out: Record<string, string> = {};
    let n = 0, good = 0;
    for (const [k, t] of this.total) {
      const g = this.ok.get(k) ?? 0;
      out[k.toLowerCase()] = g === t ? String(t) : `${g}/${t}`;
      n += t; good += g;
    }
    if (n) out.commands = good === n ? String(n) : `${good}/${n}`;
    return out;
  }

  lastCommand(): string { return this.last; }

  envelopeLine(): Buffer | undefined { return this.envelope; }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  drain(): void {
    if (this.stopped || this.conn.ended || !this.greeted || this.busy()) return;
    this.rules.onDrop('shutdown', this.last);
    this.conn.reply(replies.shuttingDown(this.rules.hostname));
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.onDeadline(), ms);
    this.timer.unref();
  }

  private onDeadline(): void {
    const { conn, rules } = this;
    if (this.stopped || conn.ended) return;
    // Waiting for us (a handler, or the spool's fsync after the final dot) is not the client's fault;
    // a TLS handshake has its own, shorter deadline (smtpd-server.ts, limits.tls_handshake_timeout).
    if (conn.handlerPending || conn.awaitingDataReply || conn.upgrading) return this.arm(rules.idleTimeoutMs);
    rules.onDrop('timeout', this.last);
    this.conn.reply(replies.timeout(rules.hostname));
  }

  /** A reply to a command the guard stops, then the parser resumes once it is written. */
  private answer(r: Reply, callback?: () => void): void {
    this.conn.reply(r);
    setImmediate(() => this.conn.whenWritable(callback ?? (() => undefined)));
  }

  /**
   * Replies to pipelined commands are written together at the end of this turn
   * of the event loop: MAIL, RCPT and DATA sent in one packet get their three
   * replies in one write (one syscall, one wake-up of the client) instead of three.
   */
  private coalesce(): void {
    const socket = this.conn.socket;
    if (this.corked || !socket || socket.destroyed || this.conn.upgrading) return;
    this.corked = true;
    socket.cork();
    setImmediate(() => { this.corked = false; socket.uncork(); });
  }

  /** A transaction under way: MAIL given, or DATA streaming or waiting for the spool. */
  private busy(): boolean {
    const { conn } = this;
    return !!conn.session.envelope?.mailFrom || conn.inData || conn.handlerPending;
  }

  /** Every reply: the library's reworded, ours kept as written; then what the reply settles. */
  private onReply(code: ReplyArgs[0], data: ReplyArgs[1], context: ReplyArgs[2], send: ReplyArgs[3]): void {
    if (typeof data === 'string') {
      const t = translate(code, data, this.rules.hostname);
      if (t) { code = t.code; data = 'enhanced' in t ? `${t.enhanced} ${t.text}` : t.text; }
      if (ENHANCED.test(data)) context = false;
    }
    if (PIPELINED.has(this.last) && code !== 421) this.coalesce();
    if (code === 354) this.rules.lineEnds?.startContent();
    send(code, data, context);
    this.afterReply(code);
  }

  /** The counts, the next deadline, a drain that ends an idle session, and the error limit. */
  private afterReply(code: number): void {
    const { conn, rules } = this;
    // a final reply (not 334/354) settles the last command for the counts
    if (code < 300 || code >= 400) {
      if (code < 400 && this.last !== 'CONNECT') this.ok.set(this.last, (this.ok.get(this.last) ?? 0) + 1);
    }
    this.arm(code === 354 ? rules.dataTimeoutMs : rules.idleTimeoutMs);
    // stopping: once a transaction has ended (its 250 is out and the session reset), end the session
    // rather than wait for the client's next command, so a drain does not hang on idle clients.
    // (drain() also asks for the greeting: a reply under 400 comes at or after it, as smtp-server
    // emits 'connect' just before it sends the 220.)
    if (rules.draining?.() && code < 400 && code !== 354) setImmediate(() => this.drain());
    if (code >= 400 && code !== 421 && ++this.errors >= rules.maxErrors && !conn.ended) {
      rules.onDrop('too many errors', this.last);
      this.conn.reply(replies.tooManyErrors(rules.hostname));
    }
  }

  /** Every command line before smtp-server sees it: counted, then handed on (true) or refused or held here (false). */
  private onCommand(command: Buffer, callback: (() => void) | undefined): boolean {
    const { conn, rules } = this;
    if (!this.greeted && !conn.upgrading) { this.beforeGreeting(command, callback); return false; }
    // every line the parser hands over takes its record, AUTH continuation lines too
    const bare = rules.lineEnds?.nextIsBare() === true;
    if (conn.upgrading || (conn.authContinues && !bare)) return true;
    const line = command.toString('latin1');
    const name = conn.authContinues ? 'AUTH' : (line.split(' ', 1)[0] ?? '').toUpperCase();
    this.last = /^[A-Z]{3,10}$/.test(name) ? name : 'UNKNOWN';
    if (!conn.authContinues) this.total.set(this.last, (this.total.get(this.last) ?? 0) + 1);
    clearTimeout(this.timer);
    const refusal = bare
      ? { reply: replies.bareNewline(rules.hostname), drop: 'bare <LF> received', close: true }
      : this.refusal(name, line);
    if (!refusal) {
      this.envelope = name === 'MAIL' || name === 'RCPT' ? command : undefined;
      return true;
    }
    if (refusal.drop) rules.onDrop(refusal.drop, refusal.after ?? this.last);
    if (!refusal.close) { this.answer(refusal.reply, callback); return false; }
    this.conn.reply(refusal.reply);
    conn.close();
    callback?.();
    return false;
  }

  /** The first rule the command breaks, checked in this order (the counters move only as far as the checks go). */
  private refusal(name: string, line: string): Refusal | undefined {
    const { conn, rules } = this;
    const host = rules.hostname;
    // stopping: a transaction under way may finish; nothing new starts (421 closes the session)
    if (rules.draining?.() && !this.busy() && name !== 'QUIT') return { reply: replies.shuttingDown(host), drop: 'shutdown' };
    if (HTTP.test(line)) return { reply: replies.nonSmtpCommand(), drop: 'non-SMTP command', after: name, close: true };
    // past the junk limit each junk command also counts as an error, so a client looping on NOOP
    // meets the error limit (Postfix)
    if (JUNK.has(name) && ++this.junk > rules.maxJunk && ++this.errors >= rules.maxErrors && !conn.ended) {
      return { reply: replies.tooManyErrors(host), drop: 'too many errors' };
    }
    // Exim smtp_accept_max_per_connection: every MAIL counts, whatever became of it
    if (name === 'MAIL' && ++this.mails > rules.maxMessages && !conn.ended) {
      return { reply: replies.tooManyMessages(host), drop: 'too many messages' };
    }
    if (CHECKED.has(name) && CONTROL.test(line)) return { reply: replies.controlCharacters(name) };
    if (rules.starttlsRequired && !conn.secure && !PRE_TLS.has(name)) return { reply: replies.mustStartTls() };
    const authRefusal = name === 'AUTH' ? rules.authRefusal() : undefined;
    return authRefusal ? { reply: authRefusal } : undefined;
  }

  /**
   * A command that came before the greeting (smtp-server would answer "421 You talk too soon").
   * Postfix's smtpd reads it after its banner, and so do we: it is held until the greeting is
   * out. A listener with `pregreet` refuses such a client instead (listener-connection.ts): then the
   * session is closing and the command is dropped.
   */
  private beforeGreeting(command: Buffer, callback?: () => void): void {
    const { conn } = this;
    if (conn.ended) return;
    conn.once('connect', () => setImmediate(() => conn.dispatch(command, callback)));
  }
}
