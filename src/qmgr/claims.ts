// The queue manager on a shared store (queue/spool.ts SharedQueue): before each
// attempt it claims the message, and what the claim says decides whether the
// attempt goes on. On the file store there is nothing to claim (one node).
import type { MailLog } from '../maillog/maillog.js';
import type { QueueEntry, SharedQueue } from '../queue/spool.js';
import type { Item } from './scheduler.js';

/** While the store cannot be reached, an attempt is asked for again after this long (delivery pauses, then resumes by itself). */
export const UNAVAILABLE_RETRY_MS = 5000;
/** A message another node delivers is looked at again this long after its lease would expire. */
const BUSY_SLACK_MS = 250;

/**
 * The message leased to this node, read afresh (another node may have tried it); `null`: it is
 * gone; `undefined`: not this node's to try now (it waits until `item.due`, or is held: both set here).
 */
export async function claimFor(shared: SharedQueue, item: Item, log: MailLog): Promise<QueueEntry | null | undefined> {
  let c;
  try { c = await shared.claim(item.id); } catch (e) {
    log.warning(`${item.id}: cannot claim it for delivery (${(e as Error).message}); trying again in ${UNAVAILABLE_RETRY_MS / 1000}s`, 'qmgr');
    item.due = Date.now() + UNAVAILABLE_RETRY_MS;
    return undefined;
  }
  switch (c.kind) {
    case 'gone': return null;
    case 'held': item.held = true; return undefined;
    case 'busy': item.due = c.until + BUSY_SLACK_MS; return undefined;
    case 'claimed':
      if (c.takeover) {
        log.warning(`${item.id}: taking over delivery: another node's lease expired; recipients it delivered but could not record get this message again (duplicate)`, 'qmgr');
      }
      return c.entry;
  }
}
