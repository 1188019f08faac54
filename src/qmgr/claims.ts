// The queue manager on a shared store (queue/spool.ts SharedQueue): before each
// attempt it claims the message, and what the claim says decides whether the
// attempt goes on. On the file store there is nothing to claim (one node).
import type { MailLog } from '../maillog/maillog.js';
import { dueOf, type QueueEntry, type SharedQueue } from '../queue/spool.js';
import type { Item } from './scheduler.js';

/** While the store cannot be reached, an attempt is asked for again after this long (delivery pauses, then resumes by itself). */
export const UNAVAILABLE_RETRY_MS = 5000;
/** A message another node delivers is looked at again this long after its lease would expire. */
const BUSY_SLACK_MS = 250;

export type ClaimOutcome =
  /** Leased to this node: attempt it. */
  | { readonly go: true; readonly entry: QueueEntry }
  /** Not this node's to try now: `forget` it (gone), or wait until `item.due` (set here). */
  | { readonly go: false; readonly forget?: boolean; readonly finished?: boolean };

export async function claimFor(shared: SharedQueue, item: Item, log: MailLog): Promise<ClaimOutcome> {
  let c;
  try { c = await shared.claim(item.id); } catch (e) {
    log.warning(`${item.id}: cannot claim it for delivery (${(e as Error).message}); trying again in ${UNAVAILABLE_RETRY_MS / 1000}s`, 'qmgr');
    item.due = Date.now() + UNAVAILABLE_RETRY_MS;
    return { go: false };
  }
  switch (c.kind) {
    case 'gone': return { go: false, forget: true };
    case 'held': item.held = true; return { go: false };
    case 'busy': item.due = c.until + BUSY_SLACK_MS; return { go: false };
    case 'claimed':
      if (c.takeover) {
        log.warning(`${item.id}: taking over delivery: another node's lease expired; recipients it delivered but could not record get this message again (duplicate)`, 'qmgr');
      }
      if (dueOf(c.entry.state) === undefined) return { go: false, finished: true };
      return { go: true, entry: c.entry };
  }
}
