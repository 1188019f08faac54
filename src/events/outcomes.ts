// What happens around each delivery attempt that leaves the host: recipients on
// the suppression list bounce at once (the upstream is not contacted for them),
// a "mailbox does not exist" refusal puts its recipient on the list, and every
// outcome becomes a webhook event, on disk before the queue manager records the
// attempt (it records only after deliver() resolves).
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import type { MailLog } from '../maillog/maillog.js';
import type { Spool } from '../queue/spool.js';
import type { SuppressionList } from './suppression-list.js';
import type { DeliveryEvent, WebhookOutbox } from './webhooks.js';

export interface OutcomeDeps {
  readonly suppression: SuppressionList;
  readonly log: MailLog;
  readonly spool: Spool;
  /** Absent without [[webhook]] (a reload may change it). */
  readonly webhooks: () => WebhookOutbox | undefined;
}

function suppressedResult(rcpt: string, s: { dsn: string; reply: string; since: string }): RcptResult {
  return {
    rcpt, outcome: 'bounced', relay: 'none', connectMs: 0, transmitMs: 0,
    dsn: {
      status: s.dsn,
      reason: `recipient is on the suppression list since ${s.since.slice(0, 10)}: the provider refused it as nonexistent (${s.reply}); nothing was sent. If the mailbox exists again: smarthost suppression del ${rcpt}`,
      diagnostic: s.reply,
    },
  } as RcptResult;
}

/** The Message-ID header of a stored message (its first 16 KB), for webhook events. */
async function messageIdOf(msg: OutgoingMessage): Promise<string | null> {
  const stream = msg.body();
  let head = '';
  for await (const c of stream as AsyncIterable<Buffer>) {
    head += c.toString('latin1');
    if (head.includes('\r\n\r\n') || head.length > 16_384) break;
  }
  stream.destroy();
  return /^Message-ID:[ \t]*(<[^>\r\n]*>)/im.exec(head.split('\r\n\r\n')[0]!)?.[1] ?? null;
}

export class DeliveryOutcomes {
  constructor(private readonly d: OutcomeDeps) {}

  async deliver(msg: OutgoingMessage, send: (m: OutgoingMessage) => Promise<RcptResult[]>): Promise<RcptResult[]> {
    const stopped: RcptResult[] = [];
    const rest = msg.recipients.filter((r) => {
      const s = this.d.suppression.find(r.address);
      if (s) stopped.push(suppressedResult(r.address, s));
      return !s;
    });
    const results = [...stopped, ...(rest.length ? await send({ ...msg, recipients: rest }) : [])];
    for (const r of results) {
      if (r.outcome === 'bounced' && r.relay !== 'none' && this.d.suppression.suppresses(r.dsn.status)) {
        const s = this.d.suppression.add(r.rcpt, r.dsn.status, r.dsn.diagnostic ?? r.dsn.reason, msg.id);
        this.d.log.suppressed(msg.id, r.rcpt, s.dsn, s.expires);
      }
    }
    const hooks = this.d.webhooks();
    if (hooks) await hooks.add(await this.events(msg, results, new Set(stopped.map((r) => r.rcpt))));
    return results;
  }

  /**
   * A delay notice went to the sender: a "delayed" event per recipient still deferred. Taken
   * from the log line after the notice was committed, so unlike delivery events a crash in that
   * instant can lose it (the notice itself is not lost).
   */
  async delayed(id: string): Promise<void> {
    const hooks = this.d.webhooks();
    const entry = hooks ? await this.d.spool.get(id).catch(() => undefined) : undefined;
    if (!hooks || !entry) return;
    const at = new Date().toISOString();
    await hooks.add(entry.state.recipients.filter((r) => r.state === 'deferred').map((r) => ({
      event: 'delayed' as const, id, message_id: null, from: entry.envelope.sender, to: r.address, dsn: r.dsn ?? null,
      status: 'delayed' as const, reply: r.lastReply ?? null, relay: null, attempt: r.attempts, at,
    })));
  }

  private async events(msg: OutgoingMessage, results: readonly RcptResult[], suppressed: ReadonlySet<string>): Promise<DeliveryEvent[]> {
    const [messageId, entry] = await Promise.all([messageIdOf(msg).catch(() => null), this.d.spool.get(msg.id).catch(() => undefined)]);
    const at = new Date().toISOString();
    return results.map((r) => {
      const before = entry?.state.recipients.find((x) => x.address === r.rcpt)?.attempts;
      const event = suppressed.has(r.rcpt) ? 'suppressed' : r.outcome === 'sent' ? 'delivered' : r.outcome;
      return {
        event, id: msg.id, message_id: messageId, from: msg.sender, to: r.rcpt, dsn: r.dsn.status,
        status: suppressed.has(r.rcpt) ? 'suppressed' : r.outcome, reply: r.dsn.diagnostic ?? r.dsn.reason,
        relay: r.relay === 'none' ? null : r.relay, attempt: suppressed.has(r.rcpt) ? null : (before ?? 0) + 1, at,
      };
    });
  }
}
