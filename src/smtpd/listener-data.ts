// A listener's onData: the envelope smtp-server collected, with the addresses as the
// client sent them and its DSN and BODY parameters, goes with the message to intake.ts;
// its result becomes the reply (250 only once the spool has fsynced) and the log lines.
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { ClientInfo, Recipient } from '../mail/envelope.js';
import type { NewEnvelope } from '../queue/spool.js';
import { intake, type IntakeResult } from '../cleanup/intake.js';
import { replyError, type ListenerScope, type SessionMeta } from './listener-scope.js';

type DataDone = Parameters<NonNullable<SMTPServerOptions['onData']>>[2];

export function dataHooks(scope: ListenerScope): Pick<SMTPServerOptions, 'onData'> {
  const { deps } = scope;
  return {
    onData(stream, session, cb) {
      const m = scope.sessions.meta(session);
      const header = { by: deps.hostname, showAuthUser: deps.auth?.authenticatedHeader ?? false };
      intake(stream, newEnvelope(scope, session, m), deps.spool, deps.limits, header, (id) => {
        deps.log.client(id, m.peer, session.user ? { method: m.authMethod ?? 'PLAIN', username: String(session.user) } : undefined);
      }).then((result) => answer(scope, session, m, result, cb));
    },
  };
}

/** ESMTPSA and the like, for the Received: header (RFC 3848). */
const protocol = (s: SMTPServerSession) =>
  `${s.openingCommand === 'EHLO' ? 'E' : ''}SMTP${s.secure ? 'S' : ''}${s.user ? 'A' : ''}`;

/** The envelope to queue: smtp-server's, with the exact addresses, the client, and MAIL's RET/ENVID/BODY/SMTPUTF8. */
function newEnvelope({ sessions }: ListenerScope, session: SMTPServerSession, m: SessionMeta): Omit<NewEnvelope, 'id'> {
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
    return { address: sessions.exact(r), ...(dsn?.notify ? { notify: dsn.notify } : {}), ...(dsn?.orcpt ? { orcpt: dsn.orcpt } : {}) };
  });
  const ret = typeof args.RET === 'string' ? args.RET.toUpperCase() : undefined;
  const body = typeof args.BODY === 'string' ? args.BODY.toUpperCase() : undefined;
  return {
    sender: env.mailFrom ? sessions.exact(env.mailFrom) : '', recipients, client, arrived: new Date().toISOString(),
    ...(ret === 'FULL' || ret === 'HDRS' ? { ret } : {}),
    ...(typeof args.ENVID === 'string' ? { envid: args.ENVID } : {}),
    ...(body === '8BITMIME' || body === '7BIT' ? { body } : {}),
    ...(sessions.addresses.smtputf8(session) ? { smtputf8: true } : {}),
  };
}

/** intake's result: the reply to DATA, and its log lines. */
function answer({ deps, sessions }: ListenerScope, session: SMTPServerSession, m: SessionMeta, result: IntakeResult, cb: DataDone): void {
  const { log } = deps;
  if (result.ok) {
    if (result.messageId) log.messageId(result.envelope.id, result.messageId);
    log.queued(result.envelope.id, result.envelope.sender, result.envelope.size, result.envelope.recipients.length);
    deps.observe?.received(result.envelope.size, result.commitMs / 1000);
    // the 250 first: the client need not wait while delivery is set going
    try { return cb(null, `${result.reply.enhanced} ${result.reply.text}`); } finally { deps.onQueued?.(result.envelope); }
  }
  if (result.storage) log.storageError(result.id ?? 'NOQUEUE', result.error?.message ?? 'unknown error');
  else if (result.error) log.lostConnection(m.peer, 'DATA');
  else sessions.rejectLog('END-OF-MESSAGE', session, result.reply, result.id ? { id: result.id } : {});
  cb(replyError(result.reply));
}
