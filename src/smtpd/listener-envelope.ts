// A listener's onMailFrom and onRcptTo: the address as the client sent it
// (envelope-address.ts), the relay policy (relay-policy.ts), [auth] senders, and MAIL's
// SIZE= against the free disk; then MAIL waits for room in delivery (inflow).
import type { SMTPServerAddress, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { replies } from '../mail/replies.js';
import { replyError, type ListenerScope } from './listener-scope.js';
import { checkMailFrom, checkRcptTo, checkSenderLogin } from './relay-policy.js';

type Done = (err?: Error | null) => void;

export function envelopeHooks(scope: ListenerScope): Pick<SMTPServerOptions, 'onMailFrom' | 'onRcptTo'> {
  const { listen, deps, sessions } = scope;
  return {
    onMailFrom(address, session, cb) {
      const m = sessions.meta(session);
      const sender = sessions.addresses.check('MAIL', address, session);
      if (!sender.ok) return cb(replyError(sender.reply));
      const r = checkMailFrom({ listener: listen, trusted: m.trusted, authenticated: !!session.user })
        ?? checkSenderLogin(deps.auth?.senders, session.user ? String(session.user) : undefined, sender.address);
      if (r) {
        sessions.rejectLog('MAIL', session, r, { from: sender.address });
        return cb(replyError(r));
      }
      checkSize(scope, address, session, sender.address, cb);
    },

    onRcptTo(address, session, cb) {
      const m = sessions.meta(session);
      const rcpt = sessions.addresses.check('RCPT', address, session);
      if (!rcpt.ok) return cb(replyError(rcpt.reply));
      const r = checkRcptTo({ listener: listen, trusted: m.trusted, authenticated: !!session.user }, rcpt.address, deps.localDomains, deps.localExists);
      if (r) {
        sessions.rejectLog('RCPT', session, r, { to: rcpt.address });
        return cb(replyError(r));
      }
      cb();
    },
  };
}

/**
 * SIZE= larger than the disk can take: 452 now, not after the client uploaded it all (Postfix
 * refuses when the message would leave less than half of it again free, queue_minfree aside).
 * Otherwise MAIL is answered once delivery has room (inflow).
 */
function checkSize({ deps, sessions }: ListenerScope, address: SMTPServerAddress, session: SMTPServerSession, sender: string, cb: Done): void {
  const size = Number((address.args || {} as Record<string, string>).SIZE ?? 0);
  const proceed = () => (deps.inflow ? void deps.inflow().then(() => cb(), () => cb()) : cb());
  if (!(size > 0) || !deps.freeBytes) return proceed();
  deps.freeBytes().then((free) => {
    if (free === undefined || size * 1.5 <= free) return proceed();
    const r = replies.insufficientStorage();
    sessions.rejectLog('MAIL', session, r, { from: sender });
    cb(replyError(r));
  }, proceed);
}
