// smtp-server, greeting at once. The library's SMTPConnection.init() holds every
// new connection 100 ms before the 220 to catch early talkers, with no option to
// turn that off: a client that sends one message per connection (cron, PHP,
// monitoring) would wait 100 ms each time and be capped near 10 msg/s. Here the
// greeting goes out as soon as the reverse lookup (cached) and onConnect are done;
// early-talker detection is Postfix postscreen's pregreet test, opt-in per listener
// (Connection.pregreet(), called from the listener's onConnect).
//
// The same seam bounds TLS handshakes ([limits] tls_handshake_timeout: upgrade() for
// STARTTLS, the net.Server's 'connection' event for implicit TLS) and records how
// each line the client sends ends (line-ledger.ts), for the bare-LF rule.
//
// The library's private members (the parser, init()'s _setListeners(), the STARTTLS
// state) are reached only through SeamConnection (smtp-server-seam.ts), which says
// why each has no public way; smtp-server-seam.test.ts drives them in the real
// library. init(), upgrade(), send() and connect() are public methods replaced by
// subclassing. test/e2e/greeting.test.ts fails if the greeting is held again or
// early input is handled differently.
import { performance } from 'node:perf_hooks';
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import type { Reply } from '../mail/reply.js';
import { LineLedger } from './line-ledger.js';
import { SmtpdStream } from './data-stream.js';
import { SeamConnection } from './smtp-server-seam.js';

/** What a client sent before the greeting was complete (Postfix's PREGREET log line). */
export interface Pregreet { readonly bytes: number; readonly seconds: number; readonly text: string }

type Socket = net.Socket | tls.TLSSocket;
type Send = (code: number, data?: string | string[] | null, context?: string | false) => void;
/** Sees every reply; `send` writes it (possibly changed) with smtp-server. */
export type ReplyFilter = (code: number, data: string | string[] | null | undefined, context: string | false | undefined, send: Send) => void;

export class Connection extends SeamConnection {
  private readonly connectedAt = performance.now();
  /** What the client sent before the greeting (kept until smtp-server greets). */
  private early: { data: Buffer; at: number } | undefined;
  private onEarly: (() => void) | undefined;
  private ledger: LineLedger | undefined;
  private observed: Socket | undefined;
  /** Set by the listener: how long a STARTTLS handshake may take, and who is told when it took longer. */
  handshake: { readonly ms: number; readonly onTimeout: () => void } | undefined;

  /** `watchEarly`: keep what arrives before the greeting, for pregreet(); only listeners with `pregreet` need it. */
  constructor(server: SMTPServer, private readonly raw: Socket, options: SMTPConnectionOptions | null | undefined, private readonly watchEarly: boolean) {
    super(server, raw, options);
  }

  /** Installed by the guard before init(): every reply passes through it. */
  replyFilter: ReplyFilter | undefined;

  /** Our parser class (its DATA phase is data-parser.ts); prototype-only, see SeamConnection._createParser(). */
  protected override newParser(maxCommandLength: number | undefined): SmtpdStream {
    return new SmtpdStream(maxCommandLength === undefined ? {} : { maxCommandLength });
  }

  /** One of our typed replies, as "code enhanced text". */
  reply(r: Reply): void { this.send(r.code, `${r.enhanced} ${r.text}`); }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const filter = this.replyFilter;
    if (!filter) return super.send(code, data, context);
    filter(code, data, context, this.sendThrough);
  }

  /** The library's send, for the reply filter (one function, not one per reply). */
  private readonly sendThrough: Send = (code, data, context) => super.send(code, data, context);

  /** Greets at once: the library's init() without its 100 ms pause (and without maxClients, which we do not use). */
  override init(): void {
    // before _setListeners() pipes the socket into the parser; 'connect' comes right before the greeting
    if (this.watchEarly) {
      const watch = (d: Buffer) => {
        if (this.early) return;
        this.early = { data: d, at: performance.now() };
        this.onEarly?.();
      };
      this.raw.on('data', watch);
      this.once('connect', () => this.raw.off('data', watch));
    }
    if (this.ledger) this.observe(this.raw);
    this.startReading(() => this.connectionReady());
  }

  /** Record how each line ends, from the first byte on (call before init()); the guard reads the ledger. */
  recordLineEnds(): LineLedger {
    this.ledger ??= new LineLedger();
    return this.ledger;
  }

  /**
   * Feeds the ledger from this socket. Called before smtp-server pipes the socket into its parser,
   * so the ledger has a line's ending before the parser hands the guard that line.
   */
  observe(socket: Socket): void {
    const ledger = this.ledger;
    if (!ledger || this.observed === socket) return;
    this.observed = socket;
    socket.on('data', (d: Buffer) => ledger.feed(d));
  }

  /** STARTTLS: the plaintext after it is discarded, so is its ledger; the handshake gets its deadline. */
  override upgrade(callback: () => void, secureCallback?: () => void): void {
    this.ledger?.reset();
    super.upgrade(callback, secureCallback);
    const h = this.handshake;
    if (!h) return;
    const socket = this.socket; // still the plaintext one: smtp-server swaps it once the handshake is done
    const timer = setTimeout(() => {
      if (!this.upgrading || socket.destroyed) return;
      h.onTimeout();
      socket.destroy();
    }, h.ms);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  /**
   * The pregreet test: sends the first line of a multi-line greeting ("220-NAME ESMTP"), then
   * waits until `ms` after the connection was opened for the client to stay silent, as an SMTP
   * client must until the last line ("220 NAME ..." follows from smtp-server). Resolves with what
   * the client sent too early (also before this call), or undefined if it waited.
   */
  pregreet(banner: string, ms: number): Promise<Pregreet | undefined> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.onEarly = undefined;
        this.raw.off('close', done);
        const e = this.early;
        resolve(e && { bytes: e.data.length, seconds: (e.at - this.connectedAt) / 1000, text: e.data.toString('latin1') });
      };
      this.raw.write(`220-${banner}\r\n`);
      if (this.early) return done();
      timer = setTimeout(done, Math.max(0, this.connectedAt + ms - performance.now()));
      this.onEarly = done;
      this.raw.once('close', done);
    });
  }
}

export interface ServerHooks {
  /** Each new connection, before anything is read from it (the listener attaches its guard here). */
  readonly onConnection: (conn: Connection) => void;
  /** The listener runs the pregreet test: connections keep what the client sends before the greeting. */
  readonly pregreet: boolean;
  /** Implicit TLS: the handshake's deadline, counted from the TCP connection (smtp-server does it before connect()). */
  readonly implicitHandshake?: { readonly ms: number; readonly onTimeout: (ip: string) => void };
}

export class SmtpdServer extends SMTPServer {
  /** Implicit TLS sockets still in their handshake, by "address|port", with their deadline. */
  private readonly handshaking = new Map<string, NodeJS.Timeout>();

  constructor(options: SMTPServerOptions, private readonly hooks: ServerHooks) {
    super(options);
    const h = hooks.implicitHandshake;
    // a listener of the public net.Server, after smtp-server's own (it moves with it at a reload's takeOver())
    if (options.secure && h) this.server.on('connection', (raw: net.Socket) => this.handshakeDeadline(raw, h));
  }

  /** smtp-server gives the handshake its socketTimeout (minutes); the client gets `ms` to reach connect(). */
  private handshakeDeadline(raw: net.Socket, h: NonNullable<ServerHooks['implicitHandshake']>): void {
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const timer = setTimeout(() => {
      this.handshaking.delete(key);
      if (raw.destroyed) return;
      h.onTimeout(raw.remoteAddress ?? '?');
      // with an error: smtp-server then takes the failed handshake down its own way (and reports it)
      raw.destroy(Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }));
    }, h.ms);
    timer.unref();
    this.handshaking.set(key, timer);
    raw.once('close', () => { clearTimeout(timer); this.handshaking.delete(key); });
  }

  /** The library's connect(), with our Connection. */
  override connect(socket: Socket, socketOptions?: SMTPConnectionOptions | null): void {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    clearTimeout(this.handshaking.get(key));
    this.handshaking.delete(key);
    const conn = new Connection(this, socket, socketOptions, this.hooks.pregreet);
    this.connections.add(conn);
    conn.on('error', (err: Error) => this.emit('error', err));
    conn.on('connect', (data: unknown) => this.emit('connect', data));
    this.hooks.onConnection(conn);
    conn.init();
  }
}
