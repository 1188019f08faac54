// Local delivery (Maildir and aliases) is not built yet; until it is, mail
// for [local] domains waits in the queue with a reason that says so, and
// bounces only when queue.lifetime runs out, like any deferred mail.
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';

export function deliverLocal(msg: OutgoingMessage): RcptResult[] {
  return allRecipients(msg.recipients.map((r) => r.address), 'deferred',
    { status: '4.3.2', reason: 'local delivery (Maildir) is not available in this version of smarthost; the message waits in the queue' }, 'local', 0);
}
