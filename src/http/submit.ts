// The daemon's side of POST /api/v1/messages: the same intake as SMTP (cleanup,
// Received header, size and hop limits, fsync before the answer), with the token
// holder treated as an authenticated client (may relay anywhere; local
// recipients must exist, as RCPT TO checks them).
import { Readable } from 'node:stream';
import { prepareSubmission } from '../cleanup/local-submission.js';
import type { LimitsConfig } from '../config/types.js';
import { domainMatches, domainOf } from '../mail/address.js';
import type { Envelope } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import type { Spool } from '../queue/spool.js';
import { intake } from '../cleanup/intake.js';
import type { ApiSubmission, SubmitOutcome } from './messages.js';

export interface SubmitDeps {
  readonly spool: Spool;
  readonly limits: LimitsConfig;
  readonly hostname: string;
  readonly showAuthUser: boolean;
  readonly tls: boolean;
  readonly localDomains: readonly string[];
  readonly localExists: (rcpt: string) => boolean | 'unavailable';
  readonly log: MailLog;
  /** A committed message: log its "(queue active)" line and hand it to the queue manager. */
  readonly queued: (e: Envelope) => void;
}

export function apiSubmit(d: SubmitDeps): (s: ApiSubmission) => Promise<SubmitOutcome> {
  return async (s) => {
    for (const [i, r] of s.recipients.entries()) {
      if (!domainMatches(domainOf(r), d.localDomains)) continue;
      const known = d.localExists(r);
      if (known === 'unavailable') return { ok: false, status: 503, error: 'temporary_failure', message: `<${r}>: temporary lookup failure (cannot read the aliases or passwd file)` };
      if (!known) return { ok: false, status: 400, error: 'unknown_recipient', message: `<${r}>: User unknown in local recipient table`, field: `recipients[${i}]` };
    }
    const message = s.raw
      ? prepareSubmission(s.message, { extractRecipients: false, facts: { hostname: d.hostname, sender: s.sender, now: new Date() } }).message
      : s.message;
    const eightBit = message.some((b) => b > 0x7f);
    const client = { address: s.clientIp, hostname: 'api', helo: 'api', protocol: d.tls ? 'HTTPS' : 'HTTP', authUser: s.token, authMethod: 'bearer' };
    let queueId = '';
    const r = await intake(Readable.from([message]), {
      sender: s.sender, recipients: s.recipients.map((address) => ({ address })), client, arrived: new Date().toISOString(),
      ...(eightBit ? { body: '8BITMIME' as const } : {}),
    }, d.spool, d.limits, { by: d.hostname, showAuthUser: d.showAuthUser }, (id) => { queueId = id; });
    if (!r.ok) {
      if (r.storage) d.log.storageError(r.id ?? queueId, r.error?.message ?? 'unknown error');
      const text = `${r.reply.code} ${r.reply.enhanced} ${r.reply.text}`;
      if (r.storage) return { ok: false, status: 503, error: 'insufficient_storage', message: `${text}: nothing was queued; try again later` };
      if (r.reply.code === 552) return { ok: false, status: 413, error: 'too_large', message: text };
      return { ok: false, status: 400, error: 'refused', message: text };
    }
    d.log.client(r.envelope.id, { hostname: 'api', address: s.clientIp }, { method: 'bearer', username: s.token });
    if (r.messageId !== undefined) d.log.messageId(r.envelope.id, r.messageId);
    d.queued(r.envelope);
    return { ok: true, id: r.envelope.id };
  };
}
