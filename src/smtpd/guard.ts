// Per-connection rules that smtp-server does not enforce by itself, applied by
// wrapping the two narrow points every command and reply pass through:
// `_onCommand` (before smtp-server parses a command) and `send` (every reply).
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
// These are smtp-server internals (stable since 3.x; package.json requires >= 3.21.6)
// and covered by the e2e tests, which fail loudly if they change.
import type { Reply } from '../mail/reply.js';
import { replies } from '../mail/replies.js';
import type { LineLedger } from './line-ledger.js';

/** The parts of smtp-server's SMTPConnection this module touches. */
export interface RawConnection {
  send(code: number, data?: string | string[], context?: string | false): void;
  _onCommand(command: Buffer, callback?: () => void): void;
  _whenWritable(next: () => void): void;
  close(): void;
  secure: boolean;
  _upgrading: boolean;
  _ready: boolean;
  _nextHandler: unknown;
  _handlerPending: boolean;
  _dataStream: unknown;
  _parser: { _dataMode: boolean } | false;
  _closing: boolean;
  _closed: boolean;
  /** Emitted ('connect') just before smtp-server sends its greeting. */
  once(event: 'connect', listener: () => void): unknown;
  _socket?: { cork(): void; uncork(): void; destroy(): void; destroyed: boolean };
  session: { id: string; envelope?: { mailFrom: unknown } };
}

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

/** smtp-server's own canned replies, mapped to our catalogue. */
function translate(code: number, text: string, host: string): Reply | { code: number; text: string } | undefined {
  switch (text) {
    case 'Timeout - closing connection': return replies.timeout(host);
    case 'Error: too many unrecognized commands': return replies.tooManyErrors(host);
    case 'Error: command not recognized': return replies.commandNotRecognized();
    case 'Error: Command line too long': return replies.lineTooLong(host);
    case 'Server shutting down': return replies.shuttingDown(host);
    case 'Error: Bad sender address syntax': return replies.badSenderSyntax();
    case 'Error: Bad recipient address syntax': return replies.badRecipientSyntax();
    case 'Error: too many recipients': return replies.tooManyRecipients();
    case 'Error: Must issue a STARTTLS command first': return replies.mustStartTls();
    case 'Accepted': case 'Flushed': case 'OK': return { code, text: 'Ok' };
  }
  if (code === 552 && text.startsWith('Error: message exceeds fixed maximum message size')) return replies.sizeExceeded();
  return undefined;
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

export function guardConnection(conn: RawConnection, rules: GuardRules): Guard {
  const origSend = conn.send.bind(conn);
  const origOnCommand = conn._onCommand.bind(conn);
  const ok = new Map<string, number>();
  const total = new Map<string, number>();
  let last = 'CONNECT';
  let envelopeLine: Buffer | undefined;
  let errors = 0;
  let junk = 0;
  let mails = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const arm = (ms: number) => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(onDeadline, ms);
    timer.unref();
  };

  const onDeadline = () => {
    if (stopped || conn._closing || conn._closed) return;
    // Waiting for us (a handler, or the spool's fsync after the final dot) is not the client's fault;
    // a TLS handshake has its own, shorter deadline (server.ts, limits.tls_handshake_timeout).
    const dataIn = conn._dataStream && conn._parser && !conn._parser._dataMode;
    if (conn._handlerPending || dataIn || conn._upgrading) return arm(rules.idleTimeoutMs);
    rules.onDrop('timeout', last);
    reply(replies.timeout(rules.hostname));
  };

  const reply = (r: Reply) => conn.send(r.code, `${r.enhanced} ${r.text}`);
  /**
   * Replies to pipelined commands are written together at the end of this turn
   * of the event loop: MAIL, RCPT and DATA sent in one packet get their three
   * replies in one write (one syscall, one wake-up of the client) instead of three.
   */
  let corked = false;
  const coalesce = () => {
    const socket = conn._socket;
    if (corked || !socket || socket.destroyed || conn._upgrading) return;
    corked = true;
    socket.cork();
    setImmediate(() => { corked = false; socket.uncork(); });
  };
  /** A transaction under way: MAIL given, or DATA streaming or waiting for the spool. */
  const busy = () => !!conn.session.envelope?.mailFrom || !!conn._dataStream || conn._handlerPending;

  conn.send = (code, data, context) => {
    if (typeof data === 'string') {
      const t = translate(code, data, rules.hostname);
      if (t) { code = t.code; data = 'enhanced' in t ? `${t.enhanced} ${t.text}` : t.text; }
      if (ENHANCED.test(data)) context = false;
    }
    if (PIPELINED.has(last) && code !== 421) coalesce();
    if (code === 354) rules.lineEnds?.startContent();
    origSend(code, data, context);
    // a final reply (not 334/354) settles the last command for the counts
    if (code < 300 || code >= 400) {
      const key = last.toLowerCase();
      if (code < 400 && key !== 'connect') ok.set(key, (ok.get(key) ?? 0) + 1);
    }
    arm(code === 354 ? rules.dataTimeoutMs : rules.idleTimeoutMs);
    // stopping: once a transaction has ended (its 250 is out and the session reset), end the session
    // rather than wait for the client's next command, so a drain does not hang on idle clients
    if (rules.draining?.() && code < 400 && code !== 354) {
      setImmediate(() => {
        if (stopped || conn._closing || conn._closed || busy()) return;
        rules.onDrop('shutdown', last);
        reply(replies.shuttingDown(rules.hostname));
      });
    }
    if (code >= 400 && code !== 421 && ++errors >= rules.maxErrors && !conn._closing) {
      rules.onDrop('too many errors', last);
      reply(replies.tooManyErrors(rules.hostname));
    }
  };

  const answer = (r: Reply, callback?: () => void) => {
    reply(r);
    setImmediate(() => conn._whenWritable(callback ?? (() => undefined)));
  };

  conn._onCommand = (command, callback) => {
    if (!conn._ready && !conn._upgrading) return beforeGreeting(command, callback);
    // every line the parser hands over takes its record, AUTH continuation lines too
    const bare = rules.lineEnds?.nextIsBare() === true;
    if (conn._upgrading || (conn._nextHandler && !bare)) return origOnCommand(command, callback);
    const line = command.toString('latin1');
    const name = conn._nextHandler ? 'AUTH' : (line.split(' ', 1)[0] ?? '').toUpperCase();
    last = /^[A-Z]{3,10}$/.test(name) ? name : 'UNKNOWN';
    const key = last.toLowerCase();
    if (!conn._nextHandler) total.set(key, (total.get(key) ?? 0) + 1);
    clearTimeout(timer);
    if (bare) {
      rules.onDrop('bare <LF> received', last);
      reply(replies.bareNewline(rules.hostname));
      conn.close();
      return callback?.();
    }
    // stopping: a transaction under way may finish; nothing new starts (421 closes the session)
    if (rules.draining?.() && !busy() && name !== 'QUIT') { rules.onDrop('shutdown', last); return answer(replies.shuttingDown(rules.hostname), callback); }
    if (HTTP.test(line)) {
      rules.onDrop('non-SMTP command', name);
      reply(replies.nonSmtpCommand());
      conn.close();
      return callback?.();
    }
    // past the junk limit each junk command also counts as an error, so a client looping on NOOP
    // meets the error limit (Postfix)
    if (JUNK.has(name) && ++junk > rules.maxJunk && ++errors >= rules.maxErrors && !conn._closing) {
      rules.onDrop('too many errors', last);
      return answer(replies.tooManyErrors(rules.hostname), callback);
    }
    // Exim smtp_accept_max_per_connection: every MAIL counts, whatever became of it
    if (name === 'MAIL' && ++mails > rules.maxMessages && !conn._closing) {
      rules.onDrop('too many messages', last);
      return answer(replies.tooManyMessages(rules.hostname), callback);
    }
    if (CHECKED.has(name) && CONTROL.test(line)) return answer(replies.controlCharacters(name), callback);
    if (rules.starttlsRequired && !conn.secure && !PRE_TLS.has(name)) return answer(replies.mustStartTls(), callback);
    if (name === 'AUTH') {
      const refusal = rules.authRefusal();
      if (refusal) return answer(refusal, callback);
    }
    envelopeLine = name === 'MAIL' || name === 'RCPT' ? command : undefined;
    return origOnCommand(command, callback);
  };

  /**
   * A command that came before the greeting (smtp-server would answer "421 You talk too soon").
   * Postfix's smtpd reads it after its banner, and so do we: it is held until the greeting is
   * out. A listener with `pregreet` refuses such a client instead (listener.ts): then the
   * session is closing and the command is dropped.
   */
  const beforeGreeting = (command: Buffer, callback?: () => void) => {
    if (conn._closing || conn._closed) return;
    conn.once('connect', () => setImmediate(() => conn._onCommand(command, callback)));
  };

  arm(rules.idleTimeoutMs);
  return {
    counts: () => {
      const out: Record<string, string> = {};
      let n = 0, good = 0;
      for (const [k, t] of total) {
        const g = ok.get(k) ?? 0;
        out[k] = g === t ? String(t) : `${g}/${t}`;
        n += t; good += g;
      }
      if (n) out.commands = good === n ? String(n) : `${good}/${n}`;
      return out;
    },
    lastCommand: () => last,
    envelopeLine: () => envelopeLine,
    stop: () => { stopped = true; clearTimeout(timer); },
    drain: () => {
      if (stopped || conn._closing || conn._closed || !conn._ready || busy()) return;
      rules.onDrop('shutdown', last);
      reply(replies.shuttingDown(rules.hostname));
    },
  };
}
