// One inbound listener: an smtp-server configured from a [[listen]] section,
// with our relay policy, AUTH, limits and durable intake wired into its
// callbacks. Built without a port; daemon.ts binds it. Each group of
// smtp-server hooks lives in its own file (listener-connection.ts,
// listener-auth.ts, listener-envelope.ts, listener-data.ts); they share the
// listener's sessions through listener-scope.ts.
import type { SMTPServerOptions } from 'smtp-server';
import type { ListenConfig } from '../config/types.js';
import { replies } from '../mail/replies.js';
import { authHooks } from './listener-auth.js';
import { connectionHooks, disabledCommands, serverHooks } from './listener-connection.js';
import { dataHooks } from './listener-data.js';
import { envelopeHooks } from './listener-envelope.js';
import { ListenerSessions, type ListenerScope } from './listener-scope.js';
import { ReverseLookup } from './reverse-lookup.js';
import { SmtpdServer, type Connection } from './smtpd-server.js';
import type { SmtpdDeps } from './smtpd-deps.js';

// what createListener is given; daemon.ts builds it
export type { SmtpdDeps } from './smtpd-deps.js';

/** How long a TLS session may be resumed (Postfix smtpd_tls_session_cache_timeout). */
const TLS_SESSION_SECONDS = 3600;

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
  const scope: ListenerScope = { listen, deps, sessions: new ListenerSessions(listen, deps.log) };
  const server = new SmtpdServer({
    ...serverOptions(listen, deps),
    ...connectionHooks(scope),
    ...authHooks(scope),
    ...envelopeHooks(scope),
    ...dataHooks(scope),
  }, serverHooks(scope));
  return Object.assign(server, {
    drain() {
      scope.sessions.draining = true;
      for (const g of scope.sessions.guards.values()) g.drain();
    },
    sessions: () => server.connections.size,
    closeAll() {
      for (const c of server.connections) {
        (c as Connection).reply(replies.shuttingDown(deps.hostname));
        setTimeout(() => (c as Connection).socket?.destroy(), 1000).unref();
      }
    },
  });
}

/** smtp-server's options for this listener: names, TLS, limits; the hooks come from listener-*.ts. */
function serverOptions(listen: ListenConfig, deps: SmtpdDeps): SMTPServerOptions {
  const { limits } = deps;
  return {
    name: deps.hostname,
    banner: 'smarthost',
    heloResponse: '%s',
    secure: listen.tls === 'implicit',
    ...(deps.cert ? { key: deps.cert.key, cert: deps.cert.cert } : {}),
    minVersion: deps.minTlsVersion,
    ...(deps.ticketKeys ? { ticketKeys: deps.ticketKeys } : {}),
    sessionTimeout: TLS_SESSION_SECONDS,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,        // relay-policy.ts decides, with Postfix's replies
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
    disabledCommands: disabledCommands(listen, listen.tls === 'implicit'),
    resolver: deps.reverse ?? new ReverseLookup(),
    logger: false,
  };
}
