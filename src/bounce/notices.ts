// Delivery status notifications go into the spool like any other message:
// null sender, to the original envelope sender, built by bounce/dsn.ts. The
// notice is committed (fsynced) before the original's state says "bounced",
// so a crash in between sends it twice at worst, never not at all.
import { buildDsn, RETURN_LIMIT, type DsnRecipient } from './dsn.js';
import { localClient, type Envelope } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import { storeMessage, type Spool } from '../queue/spool.js';

type NoticeKind = 'failure' | 'delay' | 'success';

async function head(spool: Spool, id: string, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const stream = spool.open(id);
  try {
    for await (const c of stream as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n > limit) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** Spools a notice about `original` and returns its envelope. Throws on storage errors. */
async function spoolNotice(spool: Spool, hostname: string, original: Envelope, recipients: DsnRecipient[], now: Date): Promise<Envelope> {
  const bytes = buildDsn({ hostname, envelope: original, recipients, original: await head(spool, original.id, RETURN_LIMIT + 1), now });
  return storeMessage(spool, {
    sender: '', recipients: [{ address: original.sender, notify: ['NEVER'] }],
    client: localClient(hostname),
    arrived: now.toISOString(), body: '8BITMIME',
  }, bytes);
}

/** Spools a notice to the sender, logs it and hands it to `enqueue`; false when it could not be stored. A bounce never bounces. */
export async function notify(
  d: { readonly spool: Spool; readonly log: MailLog; readonly hostname: string; readonly enqueue: (e: Envelope) => void },
  envelope: Envelope, kind: NoticeKind, list: DsnRecipient[], now: Date,
): Promise<boolean> {
  if (envelope.sender === '') {
    if (kind === 'failure') for (const r of list) d.log.doubleBounce(envelope.id, r.address, r.reason);
    return true;
  }
  try {
    const notice = await spoolNotice(d.spool, d.hostname, envelope, list, now);
    d.log.notice(envelope.id, kind === 'failure' ? 'non-delivery' : kind === 'delay' ? 'delay' : 'delivery status', notice.id);
    d.log.queued(notice.id, '', notice.size, 1);
    d.enqueue(notice);
    return true;
  } catch (e) {
    d.log.warning(`${envelope.id}: cannot store the ${kind} notification for <${envelope.sender}>: ${(e as Error).message}; will try again`, 'bounce');
    return false;
  }
}
