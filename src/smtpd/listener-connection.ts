// A listener's hooks around the connection itself: onConnect (connection limits, the
// pregreet test), onSecure (TLS facts, line endings inside TLS), onClose (the disconnect
// line), and what each new Connection gets before smtp-server greets it: its guard
// (guard.ts) and the TLS handshake deadlines (smtpd-server.ts).
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type tls from 'node:tls';
import type { ListenConfig } from '../config/types.js';
import { replies } from '../mail/replies.js';
import type { MailLog, Peer } from '../maillog/maillog.js';
import { guardConnection } from './guard.js';
import type { LineLedger } from './line-ledger.js';
import { replyError, type ListenerScope } from './listener-scope.js';
import { isTrusted } from './relay-policy.js';
import type { Connection, ServerHooks } from './smtpd-server.js';

type Done = (err?: Error | null) => void;

/** AUTH is offered on this listener, and for this session's TLS state. */
function authAllowed(listen: ListenConfig, secure: boolean): boolean {
  return listen.auth !== 'none' && (secure || listen.allowPlaintextAuth);
}

/** smtp-server's disabledCommands for a session: no STARTTLS once secure (or where there is none), AUTH only where allowed. */
export function disabledCommands(listen: ListenConfig, secure: boolean): string[] {
  return [
    ...(listen.tls === 'none' || listen.tls === 'implicit' || secure ? ['STARTTLS'] : []),
    ...(authAllowed(listen, secure) ? [] : ['AUTH']),
  ];
}

export function connectionHooks(scope: ListenerScope): Pick<SMTPServerOptions, 'onConnect' | 'onSecure' | 'onClose'> {
  const { listen, sessions } = scope;
  return {
    onConnect: (session, cb) => admit(scope, session, cb),
    onSecure(socket, session, cb) {
      const tlsSocket = socket as tls.TLSSocket;
      sessions.meta(session).tls = { version: tlsSocket.getProtocol() ?? 'TLS', cipher: tlsSocket.getCipher()?.name ?? 'unknown' };
      sessions.conns.get(session.id)?.observe(tlsSocket); // line endings inside TLS, before smtp-server reads them
      session.disabledCommands = disabledCommands(listen, true);
      cb();
    },
    onClose(session) {
      const { guard, meta } = sessions.forget(session.id);
      guard?.stop();
      if (!meta?.counted) return;
      scope.deps.connections.close(session.remoteAddress);
      scope.deps.observe?.connection(listen.address, false);
      scope.deps.log.disconnect(meta.peer, guard?.counts() ?? {});
    },
  };
}

/** onConnect: the connection limits, then (listeners with `pregreet`, untrusted clients) the pregreet test. */
function admit({ listen, deps, sessions }: ListenerScope, session: SMTPServerSession, cb: Done): void {
  const { log } = deps;
  const m = sessions.meta(session);
  const refusal = deps.connections.open(session.remoteAddress, m.trusted);
  if (refusal) {
    log.dropped(m.peer, refusal.text.replace(/^Error: /, ''), 'CONNECT');
    return cb(replyError(refusal));
  }
  m.counted = true;
  deps.observe?.connection(listen.address, true);
  session.disabledCommands = disabledCommands(listen, session.secure);
  log.connect(m.peer);
  const conn = sessions.conns.get(session.id);
  if (!listen.pregreetMs || m.trusted || !conn) return cb();
  conn.pregreet(`${deps.hostname} ESMTP`, listen.pregreetMs).then((early) => {
    if (!early) return cb();
    log.pregreet(m.peer, session.remotePort, early);
    conn.reply(replies.protocolError());
    conn.close();
  }, cb);
}

/** SmtpdServer's own hooks: every connection gets its guard before smtp-server greets it; TLS handshakes get deadlines. */
export function serverHooks(scope: ListenerScope): ServerHooks {
  const { listen, deps: { limits, log }, sessions } = scope;
  return {
    pregreet: listen.pregreetMs > 0,
    onConnection: (conn) => {
      sessions.conns.set(conn.session.id, conn);
      const trusted = isTrusted(conn.remoteAddress, listen.trustedNetworks);
      conn.handshake = {
        ms: limits.tlsHandshakeTimeoutMs,
        onTimeout: () => handshakeTimeout(log, sessions.peer(conn.session.id), conn.remoteAddress, 'STARTTLS'),
      };
      // Postfix smtpd_forbid_bare_newline_exclusions = $mynetworks: trusted clients stay lenient
      attachGuard(scope, conn, limits.forbidBareNewline && !trusted ? conn.recordLineEnds() : undefined);
    },
    ...(listen.tls === 'implicit' ? {
      implicitHandshake: { ms: limits.tlsHandshakeTimeoutMs, onTimeout: (ip: string) => handshakeTimeout(log, undefined, ip, 'CONNECT') },
    } : {}),
  };
}

/** Postfix: "SSL_accept error from host[ip]: …", then "lost connection after STARTTLS from host[ip]" (after CONNECT for implicit TLS). */
function handshakeTimeout(log: MailLog, peer: Peer | undefined, ip: string, after: string): void {
  const p = peer ?? { hostname: 'unknown', address: ip };
  log.tlsFailed(p, 'TLS handshake timeout');
  log.lostConnection(p, after);
}

function attachGuard({ listen, deps, sessions }: ListenerScope, conn: Connection, lineEnds: LineLedger | undefined): void {
  const { limits } = deps;
  const guard = guardConnection(conn, {
    hostname: deps.hostname,
    starttlsRequired: listen.tls === 'starttls-required',
    authRefusal: () => {
      if (authAllowed(listen, conn.secure)) return undefined;
      if (listen.auth !== 'none' && !conn.secure) return replies.mustStartTls();
      return replies.authNotEnabled();
    },
    idleTimeoutMs: limits.idleTimeoutMs,
    dataTimeoutMs: limits.dataTimeoutMs,
    maxErrors: limits.errors,
    maxJunk: limits.junkCommands,
    maxMessages: limits.messagesPerSession,
    ...(lineEnds ? { lineEnds } : {}),
    onDrop: (why, after) => deps.log.dropped(sessions.peer(conn.session.id) ?? { hostname: 'unknown', address: '?' }, why, after),
    draining: () => sessions.draining,
  });
  sessions.guards.set(conn.session.id, guard);
}
