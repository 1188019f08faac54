// One inbound listener: an smtp-server configured from a [[listen]] section,
// with our relay policy, AUTH, limits and durable intake wired into its
// callbacks. Built without a port; daemon.ts binds it.
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerSession } from 'smtp-server';
import type { Readable } from 'node:stream';
import type { AuthConfig, ListenConfig, LimitsConfig } from '../config/types.js';
import { formatDuration, type Rate } from '../config/units.js';
import type { AccountFailureCounts } from '../auth/account-throttle.js';
import type { AuthFailureCounts } from '../auth/throttle.js';
import type { UserStore } from '../auth/users-file.js';
import type { ClientInfo, Envelope, Recipient } from '../mail/envelope.js';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';
import type { MailLog, Peer } from '../maillog/maillog.js';
import type { Spool } from '../queue/spool.js';
import type { CertPair } from '../tls/server-cert.js';
import type { ConnectionLimits } from './connection-limits.js';
import { EnvelopeAddresses } from './envelope-address.js';
import { guardConnection, type Guard } from './guard.js';
import { intake } from './intake.js';
import type { LineLedger } from './line-ledger.js';
import { checkMailFrom, checkRcptTo, checkSenderLogin, isTrusted, type LocalLookup } from './policy.js';
import { ReverseLookup } from './reverse-lookup.js';
import { SmtpdServer, type Connection } from './server.js';

export interface SmtpdDeps {
  readonly hostname: string;
  readonly limits: LimitsConfig;
  readonly localDomains: readonly string[];
  /** Does a local address name a mailbox or alias (Postfix local_recipient_maps)? */
  readonly localExists?: LocalLookup;
  readonly spool: Spool;
  readonly log: MailLog;
  readonly users: UserStore;
  /** limits.auth_failures: in memory, or for every node on a shared store. */
  readonly throttle: AuthFailureCounts;
  /** limits.auth_failures_per_account; absent: failures are counted per address only. */
  readonly accounts?: AccountFailureCounts;
  readonly connections: ConnectionLimits;
  readonly cert?: CertPair;
  readonly minTlsVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Told about every message that got 250 (the queue manager picks it up). */
  readonly onQueued?: (envelope: Envelope) => void;
  /** Resolves when delivery has room for more mail (Postfix in_flow_delay); MAIL FROM waits for it. */
  readonly inflow?: () => Promise<void>;
  /** Counters for metrics; absent in `smarthost sendmail -bs`. */
  readonly observe?: SmtpdObserver;
  /** [auth] allow_authzid, authenticated_header and senders; absent: all off. */
  readonly auth?: Pick<AuthConfig, 'allowAuthzid' | 'authenticatedHeader' | 'senders'>;
  /** Free bytes where messages are stored, for MAIL FROM's SIZE=; absent or undefined: not checked. */
  readonly freeBytes?: () => Promise<number | undefined>;
  /** Client names, cached across sessions and listeners (one per daemon). */
  readonly reverse?: ReverseLookup;
  /**
   * TLS session ticket keys, one set per daemon: kept across reloads, so a client that
   * reconnects resumes its TLS session (no full handshake) on every listener, also after a
   * SIGHUP. New keys at each start.
   */
  readonly ticketKeys?: Buffer;
}

export interface SmtpdObserver {
  connection(listener: string, open: boolean): void;
  authFailed(): void;
  received(bytes: number, seconds: number): void;
}

interface Meta {
  peer: Peer;
  trusted: boolean;
  counted: boolean;
  tls?: { version: string; cipher: string };
  authMethod?: string;
}

/** How long a TLS session may be resumed (Postfix smtpd_tls_session_cache_timeout). */
const TLS_SESSION_SECONDS = 3600;

/** An Error that smtp-server turns into our exact reply (the guard keeps our enhanced code). */
function replyError(r: Reply): Error {
  return Object.assign(new Error(`${r.enhanced} ${r.text}`), { responseCode: r.code });
}

/** An smtp-server with our rules; drain() is the first step of a graceful stop. */
export type Listener = SmtpdServer & {
  /** Stop starting transactions: idle sessions get 421 4.3.2 now, busy ones right after their transaction ends. */
  drain(): void;
  /** Open sessions (after a reload, the old server's sessions until they end). */
  sessions(): number;
  /** The grace is over: 421 to every session left, then their sockets go. */
  closeAll(): void;
};

export function createListener(listen: ListenConfig, deps: SmtpdDeps): Listener {
  const { limits, log } = deps;
  const metas = new Map<string, Meta>();
  const guards = new Map<string, Guard>();
  const conns = new Map<string, Connection>();
  const reverse = deps.reverse ?? new ReverseLookup();
  // the addresses as the client sent them (smtp-server's are lossy), from the command bytes the guard keeps
  const addresses = new EnvelopeAddresses((s) => guards.get(s.id)?.envelopeLine());
  const exact = (a: SMTPServerAddress) => addresses.exact(a);
  const meta = (s: SMTPServerSession): Meta => {
    let m = metas.get(s.id);
    if (!m) {
      const hostname = s.clientHostname && !s.clientHostname.startsWith('[') ? s.clientHostname : 'unknown';
      m = { peer: { hostname, address: s.remoteAddress }, trusted: isTrusted(s.remoteAddress, listen.trustedNetworks), counted: false };
      metas.set(s.id, m);
    }
    return m;
  };
  const authAllowed = (secure: boolean) => listen.auth !== 'none' && (secure || listen.allowPlaintextAuth);
  const disabled = (secure: boolean) => [
    ...(listen.tls === 'none' || listen.tls === 'implicit' || secure ? ['STARTTLS'] : []),
    ...(authAllowed(secure) ? [] : ['AUTH']),
  ];
  const protocol = (s: SMTPServerSession) =>
    `${s.openingCommand === 'EHLO' ? 'E' : ''}SMTP${s.secure ? 'S' : ''}${s.user ? 'A' : ''}`;
  /** One NOQUEUE/queue-id reject line; `from` defaults to the transaction's sender. */
  const rejectLog = (stage: string, s: SMTPServerSession, r: Reply, ctx: { from?: string; to?: string; id?: string } = {}) => {
    const from = ctx.from ?? (s.envelope.mailFrom ? exact(s.envelope.mailFrom) : undefined);
    log.reject(stage, meta(s).peer, r, {
      ...(from !== undefined ? { from } : {}), ...(ctx.to !== undefined ? { to: ctx.to } : {}),
      proto: s.openingCommand === 'EHLO' ? 'ESMTP' : 'SMTP', helo: s.hostNameAppearsAs || '',
    }, ctx.id);
  };

  let draining = false;
  const server = new SmtpdServer({
    name: deps.hostname,
    banner: 'smarthost',
    heloResponse: '%s',
    secure: listen.tls === 'implicit',
    ...(deps.cert ? { key: deps.cert.key, cert: deps.cert.cert } : {}),
    minVersion: deps.minTlsVersion,
    ...(deps.ticketKeys ? { ticketKeys: deps.ticketKeys } : {}),
    sessionTimeout: TLS_SESSION_SECONDS,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,        // policy.ts decides, with Postfix's replies
    allowInsecureAuth: true,   // guard.ts refuses AUTH before TLS where it is not allowed
    size: limits.messageSize,
    maxRecipients: limits.recipients,
    maxCommandLength: limits.lineLength,
    // guard.ts enforces the real deadlines; smtp-server's byte-idle timer is only a backstop
    socketTimeout: Math.max(limits.idleTimeoutMs, limits.dataTimeoutMs) + 60_000,
    closeTimeout: 30_000,
    hideREQUIRETLS: true,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    disabledCommands: disabled(listen.tls === 'implicit'),
    resolver: reverse,
    logger: false,

    onConnect(session, cb) {
      const m = meta(session);
      const refusal = deps.connections.open(session.remoteAddress, m.trusted);
      if (refusal) {
        log.dropped(m.peer, refusal.text.replace(/^Error: /, ''), 'CONNECT');
        return cb(replyError(refusal));
      }
      m.counted = true;
      deps.observe?.connection(listen.address, true);
      session.disabledCommands = disabled(session.secure);
      log.connect(m.peer);
      const conn = conns.get(session.id);
      if (!listen.pregreetMs || m.trusted || !conn) return cb();
      conn.pregreet(`${deps.hostname} ESMTP`, listen.pregreetMs).then((early) => {
        if (!early) return cb();
        log.pregreet(m.peer, session.remotePort, early);
        const r = replies.protocolError();
        conn.send(r.code, `${r.enhanced} ${r.text}`);
        conn.close();
      }, cb);
    },

    onSecure(socket, session, cb) {
      const tlsSocket = socket as import('node:tls').TLSSocket;
      meta(session).tls = { version: tlsSocket.getProtocol() ?? 'TLS', cipher: tlsSocket.getCipher()?.name ?? 'unknown' };
      conns.get(session.id)?.observe(tlsSocket); // line endings inside TLS, before smtp-server reads them
      session.disabledCommands = disabled(true);
      cb();
    },

    onAuth(auth: SMTPServerAuthentication, session, cb) {
      const m = meta(session);
      const ip = session.remoteAddress;
      // limits.auth_failures_exempt: never counted, never blocked (monitoring, a NAT of known users)
      const counted = !isTrusted(ip, limits.authFailuresExempt);
      const username = auth.username ?? '';
      // counts kept by a shared store may be out of reach: then AUTH is refused for now (454), never let through unchecked
      (counted ? throttled(m.peer, ip, username) : Promise.resolve(undefined)).then((refusal) => {
        if (refusal) return cb(replyError(refusal));
        authenticate(auth, m, ip, username, counted, cb);
      }, () => cb(replyError(replies.authTemporaryFailure())));
    },

    onMailFrom(address: SMTPServerAddress, session, cb) {
      const m = meta(session);
      const sender = addresses.check('MAIL', address, session);
      if (!sender.ok) return cb(replyError(sender.reply));
      const r = checkMailFrom({ listener: listen, trusted: m.trusted, authenticated: !!session.user })
        ?? checkSenderLogin(deps.auth?.senders, session.user ? String(session.user) : undefined, sender.address);
      if (r) {
        rejectLog('MAIL', session, r, { from: sender.address });
        return cb(replyError(r));
      }
      // SIZE= larger than the disk can take: 452 now, not after the client uploaded it all (Postfix
      // refuses when the message would leave less than half of it again free, queue_minfree aside)
      const size = Number((address.args || {} as Record<string, string>).SIZE ?? 0);
      const proceed = () => (deps.inflow ? void deps.inflow().then(() => cb(), () => cb()) : cb());
      if (!(size > 0) || !deps.freeBytes) return proceed();
      deps.freeBytes().then((free) => {
        if (free === undefined || size * 1.5 <= free) return proceed();
        const r = replies.insufficientStorage();
        rejectLog('MAIL', session, r, { from: sender.address });
        cb(replyError(r));
      }, proceed);
    },

    onRcptTo(address: SMTPServerAddress, session, cb) {
      const m = meta(session);
      const rcpt = addresses.check('RCPT', address, session);
      if (!rcpt.ok) return cb(replyError(rcpt.reply));
      const r = checkRcptTo({ listener: listen, trusted: m.trusted, authenticated: !!session.user }, rcpt.address, deps.localDomains, deps.localExists);
      if (r) {
        rejectLog('RCPT', session, r, { to: rcpt.address });
        return cb(replyError(r));
      }
      cb();
    },

    onData(stream: Readable, session, cb) {
      const m = meta(session);
      const env = session.envelope;
      const args = ((env.mailFrom && env.mailFrom.args) || {}) as Record<string, string | boolean>;
      const client: ClientInfo = {
        address: m.peer.address, hostname: m.peer.hostname, helo: session.hostNameAppearsAs || '',
        protocol: protocol(session),
        ...(m.tls ? { tls: m.tls } : {}),
        ...(session.user ? { authUser: String(session.user), authMethod: m.authMethod ?? 'PLAIN' } : {}),
      };
      const recipients: Recipient[] = env.rcptTo.map((r) => {
        const dsn = r.dsn;
        return { address: exact(r), ...(dsn?.notify ? { notify: dsn.notify } : {}), ...(dsn?.orcpt ? { orcpt: dsn.orcpt } : {}) };
      });
      const ret = typeof args.RET === 'string' ? args.RET.toUpperCase() : undefined;
      const body = typeof args.BODY === 'string' ? args.BODY.toUpperCase() : undefined;
      intake(stream, {
        sender: env.mailFrom ? exact(env.mailFrom) : '', recipients, client, arrived: new Date().toISOString(),
        ...(ret === 'FULL' || ret === 'HDRS' ? { ret } : {}),
        ...(typeof args.ENVID === 'string' ? { envid: args.ENVID } : {}),
        ...(body === '8BITMIME' || body === '7BIT' ? { body } : {}),
        ...(addresses.smtputf8(session) ? { smtputf8: true } : {}),
      }, deps.spool, limits, { by: deps.hostname, showAuthUser: deps.auth?.authenticatedHeader ?? false }, (id) => {
        log.client(id, m.peer, session.user ? { method: m.authMethod ?? 'PLAIN', username: String(session.user) } : undefined);
      }).then((result) => {
        if (result.ok) {
          if (result.messageId) log.messageId(result.envelope.id, result.messageId);
          log.queued(result.envelope.id, result.envelope.sender, result.envelope.size, result.envelope.recipients.length);
          deps.observe?.received(result.envelope.size, result.commitMs / 1000);
          // the 250 first: the client need not wait while delivery is set going
          try { return cb(null, `${result.reply.enhanced} ${result.reply.text}`); } finally { deps.onQueued?.(result.envelope); }
        }
        if (result.storage) log.storageError(result.id ?? 'NOQUEUE', result.error?.message ?? 'unknown error');
        else if (result.error) log.lostConnection(m.peer, 'DATA');
        else rejectLog('END-OF-MESSAGE', session, result.reply, result.id ? { id: result.id } : {});
        cb(replyError(result.reply));
      });
    },

    onClose(session) {
      const guard = guards.get(session.id);
      guards.delete(session.id);
      conns.delete(session.id);
      guard?.stop();
      const m = metas.get(session.id);
      metas.delete(session.id);
      if (!m?.counted) return;
      deps.connections.close(session.remoteAddress);
      deps.observe?.connection(listen.address, false);
      log.disconnect(m.peer, guard?.counts() ?? {});
    },
  }, {
    pregreet: listen.pregreetMs > 0,
    // the guard sees every connection before smtp-server greets it
    onConnection: (conn) => {
      conns.set(conn.session.id, conn);
      const trusted = isTrusted(conn.remoteAddress, listen.trustedNetworks);
      conn.handshake = { ms: limits.tlsHandshakeTimeoutMs, onTimeout: () => handshakeTimeout(metas.get(conn.session.id)?.peer, conn.remoteAddress, 'STARTTLS') };
      // Postfix smtpd_forbid_bare_newline_exclusions = $mynetworks: trusted clients stay lenient
      attachGuard(conn, limits.forbidBareNewline && !trusted ? conn.recordLineEnds() : undefined);
    },
    ...(listen.tls === 'implicit' ? {
      implicitHandshake: { ms: limits.tlsHandshakeTimeoutMs, onTimeout: (ip: string) => handshakeTimeout(undefined, ip, 'CONNECT') },
    } : {}),
  });

  type AuthDone = (err: Error | null | undefined, response?: { user: string }) => void;
  /** After the throttles let the client try: the password check, and a failure counted before the 535 goes out. */
  function authenticate(auth: SMTPServerAuthentication, m: Meta, ip: string, username: string, counted: boolean, cb: AuthDone): void {
    // RFC 4616: "act as someone else" needs a policy we do not have; Postfix/Cyrus refuse it too
    const actAs = auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid ? auth.authzid : undefined;
    if (actAs !== undefined && !deps.auth?.allowAuthzid) {
      log.authFailed(m.peer, auth.method, username, `authorization identity "${actAs}" differs from the user ([auth] allow_authzid)`);
      return cb(replyError(replies.authFailed()));
    }
    deps.users.check(username, auth.password ?? '').then((good) => {
      if (!good) {
        deps.observe?.authFailed();
        log.authFailed(m.peer, auth.method, username, 'authentication failure');
        // a count the store could not take is lost, not the reply: the next check asks the store again
        const counting = counted ? countFailure(m.peer, ip, username).catch(() => undefined) : Promise.resolve();
        return void counting.then(() => cb(replyError(replies.authFailed())));
      }
      void Promise.resolve(deps.accounts?.succeeded(username, ip)).catch(() => undefined);
      m.authMethod = auth.method;
      cb(null, { user: username });
    }, (e: Error) => {
      log.warning(`cannot read users file: ${e.message}`, 'smtpd');
      cb(replyError(replies.authTemporaryFailure()));
    });
  }

  const rateText = (r: Rate) => ({ count: r.count, window: formatDuration(r.windowMs) });
  /** limits.auth_failures (421, per address), then limits.auth_failures_per_account (454, unknown addresses): the refusal, logged. */
  async function throttled(peer: Peer, ip: string, username: string): Promise<Reply | undefined> {
    const waitMs = await deps.throttle.retryAfterMs(ip);
    if (waitMs > 0) {
      log.authBlocked(peer, waitMs, rateText(deps.throttle.rate), false);
      return replies.authThrottled(waitMs);
    }
    const accountMs = (await deps.accounts?.retryAfterMs(username, ip)) ?? 0;
    if (accountMs === 0) return undefined;
    log.accountBlocked(peer, username, accountMs, rateText(deps.accounts!.rate), false);
    // no reason given: the client, maybe a guesser, learns nothing about the account
    return replies.authTemporaryFailure();
  }
  async function countFailure(peer: Peer, ip: string, username: string): Promise<void> {
    const blockedMs = await deps.throttle.fail(ip);
    if (blockedMs > 0) log.authBlocked(peer, blockedMs, rateText(deps.throttle.rate), true);
    const before = (await deps.accounts?.blockedForMs(username)) ?? 0;
    const accountMs = (await deps.accounts?.fail(username)) ?? 0;
    if (accountMs > 0 && before === 0) log.accountBlocked(peer, username, accountMs, rateText(deps.accounts!.rate), true);
  }

  /** Postfix: "SSL_accept error from host[ip]: …", then "lost connection after STARTTLS from host[ip]" (after CONNECT for implicit TLS). */
  function handshakeTimeout(peer: Peer | undefined, ip: string, after: string): void {
    const p = peer ?? { hostname: 'unknown', address: ip };
    log.tlsFailed(p, 'TLS handshake timeout');
    log.lostConnection(p, after);
  }

  function attachGuard(conn: Connection, lineEnds: LineLedger | undefined): void {
    const guard = guardConnection(conn, {
      hostname: deps.hostname,
      starttlsRequired: listen.tls === 'starttls-required',
      authRefusal: () => {
        if (authAllowed(conn.secure)) return undefined;
        if (listen.auth !== 'none' && !conn.secure) return replies.mustStartTls();
        return replies.authNotEnabled();
      },
      idleTimeoutMs: limits.idleTimeoutMs,
      dataTimeoutMs: limits.dataTimeoutMs,
      maxErrors: limits.errors,
      maxJunk: limits.junkCommands,
      maxMessages: limits.messagesPerSession,
      ...(lineEnds ? { lineEnds } : {}),
      onDrop: (why, after) => log.dropped(metas.get(conn.session.id)?.peer ?? { hostname: 'unknown', address: '?' }, why, after),
      draining: () => draining,
    });
    guards.set(conn.session.id, guard);
  }
  return Object.assign(server, {
    drain() {
      draining = true;
      for (const g of guards.values()) g.drain();
    },
    sessions: () => server.connections.size,
    closeAll() {
      for (const c of server.connections) {
        const r = replies.shuttingDown(deps.hostname);
        (c as Connection).send(r.code, `${r.enhanced} ${r.text}`);
        setTimeout(() => (c as Connection).socket?.destroy(), 1000).unref();
      }
    },
  });
}
