// A scriptable upstream SMTP server ("the provider") for delivery tests: smtp-server on
// 127.0.0.1, port 0, with the test certificates, optional STARTTLS/implicit TLS, AUTH and
// client certificates. It records every message byte for byte and every session, and
// injects faults (a reply, a stall, a dropped socket) at each stage of the dialog.
// Stages smtp-server has no hook for (EHLO, STARTTLS, AUTH, DATA) are reached by wrapping
// the connection's `_onCommand`, as src/smtpd/guard.ts does.
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerAddressArgs, type SMTPServerSession } from 'smtp-server';
import type { SMTPConnection as Conn } from 'smtp-server/lib/smtp-connection.js';
import { testCerts } from './certs.js';

export type Stage = 'connect' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'dot';
export interface Fault {
  /** 'ehlo' covers HELO too; 'connect' with 'reply' refuses the greeting (e.g. 421/554) and closes. */
  stage: Stage;
  /** reply with `reply`; stall = never answer (socket stays open); drop = destroy the socket; delay ('dot' only) = answer normally after `ms`. */
  action: 'reply' | 'stall' | 'drop' | 'delay';
  ms?: number;
  /** One line, sent verbatim: '451 4.3.0 Try again later'. */
  reply?: string;
  /** Stage 'rcpt' only: apply just to this recipient address (case-insensitive). */
  rcpt?: string;
  /** Apply this many times, then behave normally (default: forever). */
  times?: number;
}
export interface UpstreamOptions {
  /** Default 'none': STARTTLS is not offered at all. */
  tls?: 'none' | 'starttls' | 'starttls-required' | 'implicit';
  cert?: 'valid' | 'expired' | 'selfSigned' | 'wrongName';
  /** Ask for a client certificate and refuse the handshake unless the test CA signed it. */
  requireClientCert?: boolean;
  /** AUTH is offered only over TLS unless allowPlaintext; required = MAIL gets 530 before AUTH. */
  auth?: { users: Record<string, string>; required?: boolean; methods?: string[]; allowPlaintext?: boolean };
  /**
   * AUTH XOAUTH2 (list it in auth.methods) succeeds only with a token `isValid` accepts (see
   * oauth-server.ts). A bad token gets Gmail's answer (a 334 JSON error challenge, then 535) or,
   * with style 'microsoft', an immediate 535 5.7.3.
   */
  oauth?: {
    isValid(user: string, accessToken: string): boolean; style?: 'gmail' | 'microsoft';
    /** Exchange Online's rule: MAIL FROM must be the logged-in mailbox, else 554 5.2.252 SendAsDenied after the data. */
    sendAs?: boolean;
  };
  /** Advertise DSN (default true). */
  dsn?: boolean;
  /** Advertise SMTPUTF8 (default true). */
  smtputf8?: boolean;
  faults?: Fault[];
  host?: string;
  /** Default 0 (any free port); a fixed one lets two upstreams on different loopback addresses share [mx] port. */
  port?: number;
  /** Refuse, after the final dot, a message with a line longer than this many octets (CRLF not counted), as strict servers do. */
  maxLineLength?: number;
}
export interface ReceivedMessage {
  from: string; to: string[];
  /** MAIL FROM parameters as smtp-server parsed them (xtext decoded); flags such as SMTPUTF8 map to ''. */
  mailParams: Record<string, string>;
  /** RCPT TO parameters per recipient address. */
  rcptParams: Record<string, Record<string, string>>;
  /** Exactly as received after dot-unstuffing, including the CRLF before the final dot. */
  data: Buffer;
  secure: boolean; tlsVersion?: string; authUser?: string; authMethod?: string;
  /** The EHLO/HELO name. */
  clientHostname: string;
  receivedAt: number;
}
export interface SessionRecord {
  id: string; secure: boolean; authUser?: string; authMethod?: string;
  authAttempts: Array<{ method: string; username: string; ok: boolean }>;
  /** Command lines as received (as UTF-8); AUTH lines cut after the mechanism, SASL exchanges left out. */
  commands: string[];
  /** MAIL and RCPT command lines byte for byte (without CRLF). */
  envelopeLines: Buffer[];
  closedAt?: number;
  /** e.g. 'CN=smarthost test client' */
  clientCertSubject?: string;
}
export interface Upstream {
  readonly host: string; readonly port: number;
  /** 'smtp://127.0.0.1:PORT', or 'smtps://...' when tls = implicit. */
  readonly url: string;
  readonly caFile: string;
  /** Messages answered with 2xx after the final dot. */
  readonly messages: ReceivedMessage[];
  /** Messages received in full, then the socket was destroyed without a reply ('dot' drop). */
  readonly droppedAfterDot: ReceivedMessage[];
  readonly sessions: SessionRecord[];
  /** Errors smtp-server reported (TLS handshakes refused, sockets reset), for debugging. */
  readonly errors: Error[];
  /** Resolves with all messages once there are at least n; rejects listing what arrived. */
  waitForMessages(n: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Resolves with all messages once `done(messages)` holds, checked as each message arrives; rejects saying `what`. */
  waitUntil(done: (messages: readonly ReceivedMessage[]) => boolean, what: string, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Replaces the faults (and their counts) at runtime. */
  setFaults(faults: Fault[]): void;
  /** Stops listening and destroys open sockets (stalled ones too); records are kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const STAGE_OF: Record<string, Stage> = { EHLO: 'ehlo', HELO: 'ehlo', STARTTLS: 'starttls', AUTH: 'auth', MAIL: 'mail', RCPT: 'rcpt', DATA: 'data' };
// RFC 3207 §4: with TLS required, only these may come before STARTTLS.
const PRE_TLS = new Set(['EHLO', 'HELO', 'STARTTLS', 'NOOP', 'RSET', 'QUIT']);
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

interface Live { conn: Conn; record: SessionRecord; verbatim: boolean }

function parseReply(reply: string | undefined): { code: number; text: string } {
  const m = /^([2-5]\d\d) ?(.*)$/.exec(reply ?? '');
  if (!m) throw new Error(`fault reply must be one line starting with a reply code, got ${JSON.stringify(reply)}`);
  return { code: Number(m[1]), text: m[2] ?? '' };
}

const replyError = (reply: string | undefined) => {
  const r = parseReply(reply);
  return Object.assign(new Error(r.text), { responseCode: r.code });
};

const params = (args: SMTPServerAddressArgs | false | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(args || {}).map(([k, v]) => [k, v === true ? '' : v]));

function longestLine(data: Buffer): number {
  let longest = 0;
  for (let from = 0; from < data.length;) {
    const lf = data.indexOf(0x0a, from);
    const end = lf === -1 ? data.length : lf;
    longest = Math.max(longest, end - from - (end > from && data[end - 1] === 0x0d ? 1 : 0));
    from = end + 1;
  }
  return longest;
}

export async function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const certs = testCerts();
  const host = opts.host ?? '127.0.0.1';
  const tlsMode = opts.tls ?? 'none';
  const auth = opts.auth;
  const messages: ReceivedMessage[] = [];
  const droppedAfterDot: ReceivedMessage[] = [];
  const sessions: SessionRecord[] = [];
  const errors: Error[] = [];
  const live = new Map<string, Live>();
  const waiters = new Set<() => void>();
  let armed: Array<{ fault: Fault; left: number }> = [];
  let server: SMTPServer | undefined;
  let port = opts.port ?? 0;

  const setFaults = (faults: Fault[]) => {
    for (const f of faults) if (f.action === 'reply') parseReply(f.reply);
    armed = faults.map((fault) => ({ fault, left: fault.times ?? Infinity }));
  };
  setFaults(opts.faults ?? []);

  const take = (stage: Stage, rcpt?: string): Fault | undefined => {
    const hit = armed.find(({ fault, left }) => left > 0 && fault.stage === stage
      && (fault.rcpt === undefined || fault.rcpt.toLowerCase() === rcpt?.toLowerCase()));
    if (hit) hit.left--;
    return hit?.fault;
  };

  /** What smtp-server may accept in this session: AUTH only once offered, STARTTLS only if configured. */
  const disabled = (secure: boolean) => [
    ...(tlsMode === 'none' || tlsMode === 'implicit' ? ['STARTTLS'] : []),
    ...(!auth || (!secure && !auth.allowPlaintext) ? ['AUTH'] : []),
  ];

  const answer = (conn: Conn, reply: string | undefined, done: () => void) => {
    const r = parseReply(reply);
    conn.send(r.code, r.text, false);
    setImmediate(() => conn._whenWritable(done));
  };

  /** Acts out a fault at a command; a stall never calls `done`, so the parser waits for good. */
  const inject = (conn: Conn, fault: Fault, done: () => void) => {
    if (fault.action === 'reply') return answer(conn, fault.reply, done);
    if (fault.action === 'drop') return void conn._socket.destroy();
    conn._handlerPending = true; // stall: also keeps smtp-server's idle timeout from answering 421
  };

  const attach = (conn: Conn) => {
    const record: SessionRecord = { id: conn.id, secure: conn.secure, authAttempts: [], commands: [], envelopeLines: [] };
    const entry: Live = { conn, record, verbatim: false };
    sessions.push(record);
    live.set(conn.id, entry);
    const send = conn.send.bind(conn);
    // Replies that already carry an enhanced code (ours, the faults') must not get a second one.
    conn.send = (code, data, context) => {
      const keep = entry.verbatim || (typeof data === 'string' && ENHANCED.test(data));
      entry.verbatim = false;
      send(code, data, keep ? false : context);
    };
    const onCommand = conn._onCommand.bind(conn);
    conn._onCommand = (command, callback) => {
      if (conn._upgrading || !conn._ready || conn._nextHandler) return onCommand(command, callback);
      const line = command.toString('utf8');
      const name = (line.split(' ', 1)[0] ?? '').toUpperCase();
      record.commands.push(name === 'AUTH' ? line.split(' ', 2).join(' ') : line);
      if (name === 'MAIL' || name === 'RCPT') record.envelopeLines.push(Buffer.from(command));
      const done = callback ?? (() => undefined);
      if (tlsMode === 'starttls-required' && !conn.secure && !PRE_TLS.has(name)) {
        return answer(conn, '530 5.7.0 Must issue a STARTTLS command first', done);
      }
      const stage = STAGE_OF[name];
      const fault = stage && take(stage, name === 'RCPT' ? /<([^>]*)>/.exec(line)?.[1] : undefined);
      if (fault) return inject(conn, fault, done);
      onCommand(command, callback);
    };
  };

  const toMessage = (session: SMTPServerSession, data: Buffer, entry: Live | undefined): ReceivedMessage => {
    const { mailFrom, rcptTo } = session.envelope;
    const socket = entry?.conn._socket as tls.TLSSocket | undefined;
    const tlsVersion = session.secure ? socket?.getProtocol?.() : undefined;
    return {
      from: mailFrom ? mailFrom.address : '',
      to: rcptTo.map((r) => r.address),
      mailParams: params(mailFrom ? mailFrom.args : false),
      rcptParams: Object.fromEntries(rcptTo.map((r) => [r.address, params(r.args)])),
      data, secure: session.secure,
      ...(tlsVersion ? { tlsVersion } : {}),
      ...(entry?.record.authUser !== undefined ? { authUser: entry.record.authUser } : {}),
      ...(entry?.record.authMethod !== undefined ? { authMethod: entry.record.authMethod } : {}),
      clientHostname: session.hostNameAppearsAs || '',
      receivedAt: Date.now(),
    };
  };

  const build = () => new SMTPServer({
    name: 'upstream.test', banner: 'test provider', logger: false, disableReverseLookup: true,
    key: certs[opts.cert ?? 'valid'].key, cert: certs[opts.cert ?? 'valid'].cert,
    secure: tlsMode === 'implicit',
    ...(opts.requireClientCert ? { requestCert: true, rejectUnauthorized: true, ca: certs.ca } : {}),
    // AUTH and "required" are enforced here per session (see `disabled`, onMailFrom).
    authMethods: auth?.methods ?? ['PLAIN', 'LOGIN'], authOptional: true, allowInsecureAuth: true,
    hideDSN: !(opts.dsn ?? true), hideSMTPUTF8: !(opts.smtputf8 ?? true), hideENHANCEDSTATUSCODES: false, size: 50 * 1024 * 1024,

    onConnect(session, cb) {
      const entry = live.get(session.id);
      session.disabledCommands = disabled(entry?.conn.secure ?? false);
      const fault = take('connect');
      if (!fault) return cb();
      if (fault.action === 'reply') return cb(replyError(fault.reply));
      if (fault.action === 'drop') return void entry?.conn._socket.destroy();
      if (entry) entry.conn._handlerPending = true; // stall: no greeting, ever
    },
    onSecure(socket, session, cb) {
      session.disabledCommands = disabled(true);
      const record = live.get(session.id)?.record;
      if (record) {
        record.secure = true;
        const subject = opts.requireClientCert ? (socket as tls.TLSSocket).getPeerCertificate().subject : undefined;
        if (subject) record.clientCertSubject = Object.entries(subject).map(([k, v]) => `${k}=${String(v)}`).join(', ');
      }
      cb();
    },
    onAuth(a, session, cb) {
      const record = live.get(session.id)?.record;
      if (a.method === 'XOAUTH2' && opts.oauth) {
        const ok = opts.oauth.isValid(a.username ?? '', a.accessToken ?? '');
        record?.authAttempts.push({ method: a.method, username: a.username ?? '', ok });
        if (ok && record) { record.authUser = a.username ?? ''; record.authMethod = a.method; }
        if (ok) return cb(null, { user: a.username ?? '' });
        if (opts.oauth.style === 'microsoft') return cb(replyError('535 5.7.3 Authentication unsuccessful'));
        return cb(null, { data: { status: '400', schemes: 'Bearer', scope: 'https://mail.google.com/' } });
      }
      const username = a.username ?? '';
      const expected = auth?.users[username];
      const ok = expected !== undefined
        && (a.method === 'CRAM-MD5' ? a.validatePassword(expected) : (a.password ?? a.accessToken) === expected);
      record?.authAttempts.push({ method: a.method, username, ok });
      if (!ok) return cb(replyError('535 5.7.8 Authentication credentials invalid'));
      if (record) { record.authUser = username; record.authMethod = a.method; }
      cb(null, { user: username });
    },
    onMailFrom(_address, session, cb) {
      if (auth?.required && !session.user) return cb(replyError('530 5.7.0 Authentication required'));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const entry = live.get(session.id);
        const message = toMessage(session, Buffer.concat(chunks), entry);
        const tooLong = opts.maxLineLength !== undefined && longestLine(message.data) > opts.maxLineLength;
        if (tooLong) return cb(Object.assign(new Error(`5.6.0 Message contains a line longer than ${opts.maxLineLength} octets`), { responseCode: 550 }));
        const fault = take('dot');
        const user = session.user as string | undefined;
        if (opts.oauth?.sendAs && user && session.envelope.mailFrom && session.envelope.mailFrom.address.toLowerCase() !== user.toLowerCase()) {
          const from = session.envelope.mailFrom.address;
          return cb(Object.assign(new Error(`5.2.252 SendAsDenied; ${user} not allowed to send as ${from}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.`), { responseCode: 554 }));
        }
        if (fault?.action === 'drop') {
          droppedAfterDot.push(message);
          return void entry?.conn._socket.destroy();
        }
        if (fault?.action === 'stall') return;
        const finish = () => {
          const r = fault?.action === 'reply' ? parseReply(fault.reply) : { code: 250, text: `Ok: queued as ${session.id}.${session.transaction}` };
          if (entry && fault?.action === 'reply') entry.verbatim = true;
          if (r.code >= 400) return cb(Object.assign(new Error(r.text), { responseCode: r.code }));
          messages.push(message);
          for (const wake of waiters) wake();
          cb(null, r.text);
        };
        if (fault?.action === 'delay') setTimeout(finish, fault.ms ?? 1000); else finish();
      });
    },
    onClose(session) {
      const entry = live.get(session.id);
      if (entry) entry.record.closedAt = Date.now();
      live.delete(session.id);
    },
  });

  const listen = async () => {
    const s = build();
    const add = s.connections.add.bind(s.connections);
    s.connections.add = (conn) => {
      if (!s.connections.has(conn)) attach(conn);
      return add(conn);
    };
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => { s.off('error', reject); resolve(); });
    });
    s.on('error', (err) => errors.push(err));
    port = (s.server.address() as net.AddressInfo).port;
    server = s;
  };

  const stop = async () => {
    const s = server;
    if (!s) return;
    server = undefined;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const { conn } of live.values()) conn._socket.destroy();
    await closed;
  };

  const summary = () => [
    `messages: ${JSON.stringify(messages.map((m) => `${m.from} -> ${m.to.join(',')} (${m.data.length} bytes)`))}`,
    `dropped after dot: ${droppedAfterDot.length}`,
    ...sessions.map((s) => `session ${s.id}${s.secure ? ' (TLS)' : ''}: ${s.commands.join(' | ') || '(no commands)'}`),
    ...errors.map((e) => `error: ${e.message}`),
  ].join('\n  ');

  const waitUntil: Upstream['waitUntil'] = (done, what, timeoutMs = 10_000) => new Promise((resolve, reject) => {
    const check = () => { if (done(messages)) { finish(); resolve([...messages]); } };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`upstream: wanted ${what} within ${timeoutMs} ms, got ${messages.length}\n  ${summary()}`));
    }, timeoutMs);
    const finish = () => { clearTimeout(timer); waiters.delete(check); };
    waiters.add(check);
    check();
  });

  await listen();
  const name = host.includes(':') ? `[${host}]` : host;
  return {
    host, get port() { return port; },
    url: `${tlsMode === 'implicit' ? 'smtps' : 'smtp'}://${name}:${port}`,
    caFile: certs.caFile, messages, droppedAfterDot, sessions, errors,
    waitForMessages: (n, timeoutMs) => waitUntil((m) => m.length >= n, `${n} message(s)`, timeoutMs),
    waitUntil,
    setFaults,
    stop,
    async restart() { await stop(); await listen(); },
    close: stop,
  };
}
