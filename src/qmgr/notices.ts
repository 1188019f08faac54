// Delivery status notifications go into the spool like any other message:
// null sender, to the original envelope sender, built by bounce/dsn.ts. The
// notice is committed (fsynced) before the original's state says "bounced",
// so a crash in between sends it twice at worst, never not at all.
import { buildDsn, RETURN_LIMIT, type DsnRecipient } from '../bounce/dsn.js';
import { localClient, type Envelope } from '../mail/envelope.js';
import { storeMessage, type Spool } from '../queue/spool.js';

export type NoticeKind = 'failure' | 'delay' | 'success';

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
export async function spoolNotice(spool: Spool, hostname: string, original: Envelope, recipients: DsnRecipient[], now: Date): Promise<Envelope> {
  const bytes = buildDsn({ hostname, envelope: original, recipients, original: await head(spool, original.id, RETURN_LIMIT + 1), now });
  return storeMessage(spool, {
    sender: '', recipients: [{ address: original.sender, notify: ['NEVER'] }],
    client: localClient(hostname),
    arrived: now.toISOString(), body: '8BITMIME',
  }, bytes);
}
