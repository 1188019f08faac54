// The local delivery agent (Postfix local(8)): each recipient of a local
// domain is expanded through the aliases into Maildir deliveries and
// forwarded addresses. Maildir copies get Return-Path and Delivered-To and
// Unix line ends; forwarded mail goes back into the queue as a new message
// (through `resubmit`, so this folder never touches the spool).
import { domainOf } from '../mail/address.js';
import { outcomeOf, type Dsn, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import { splitMessage } from '../mail/header-section.js';
import { deliverToMaildir } from './maildir.js';
import type { LocalRecipients, LocalTarget } from './recipients.js';

export interface LocalDeps {
  readonly recipients: LocalRecipients;
  /** Maildir path template with {user}. */
  readonly maildir: string;
  readonly hostname: string;
  /** Queues `message` (CRLF) from `sender` to `to`; resolves with the new queue id once it is fsynced. */
  resubmit(sender: string, to: readonly string[], message: Buffer): Promise<string>;
  /** Chown Maildirs to their owners (only meaningful when running as root). */
  readonly chown: boolean;
}

/** How much of the header section the Delivered-To loop check reads. */
const MAX_HEAD = 256 * 1024;

export class LocalTransport {
  constructor(private readonly d: LocalDeps) {}

  async deliver(msg: OutgoingMessage): Promise<RcptResult[]> {
    const started = Date.now();
    const message = await readAll(msg);
    const head = headerSection(message);
    const written = new Set<string>(); // one copy per mailbox per message, like Postfix's duplicate filter
    const results: RcptResult[] = [];
    for (const r of msg.recipients) {
      const t0 = Date.now();
      const dsn = await this.one(r.address, msg.sender, message, head, written);
      results.push({ rcpt: r.address, outcome: outcomeOf(dsn.status),
        dsn, relay: 'local', connectMs: t0 - started, transmitMs: Date.now() - t0 });
    }
    return results;
  }

  private async one(rcpt: string, sender: string, message: Buffer, head: string, written: Set<string>): Promise<Dsn> {
    const lower = rcpt.toLowerCase();
    // Postfix's loop check: a message that already carries our Delivered-To for this address is going round in circles
    if (deliveredTo(head).includes(lower)) return { status: '5.4.6', reason: `mail forwarding loop for ${rcpt}` };
    const res = this.d.recipients.resolve(rcpt);
    if (!res.ok) {
      if (res.kind === 'unavailable') return { status: '4.3.0', reason: `${res.reason}; will try again` };
      return { status: res.kind === 'loop' ? '5.4.6' : '5.1.1', reason: res.reason };
    }
    const done: string[] = [];
    const mailboxes = res.targets.filter((t): t is Extract<LocalTarget, { kind: 'mailbox' }> => t.kind === 'mailbox');
    const forwards = res.targets.filter((t): t is Extract<LocalTarget, { kind: 'forward' }> => t.kind === 'forward').map((t) => t.address);
    for (const { user } of mailboxes) {
      if (written.has(user)) continue;
      const dir = this.d.maildir.replaceAll('{user}', user);
      const delivered = `${user}@${domainOf(rcpt) || this.d.hostname}`;
      const account = this.d.chown ? this.d.recipients.account(user) : undefined;
      try {
        await deliverToMaildir(dir, [Buffer.from(`Return-Path: <${sender}>\nDelivered-To: ${delivered}\n`, 'utf8'), toUnix(message)],
          { hostname: this.d.hostname, ...(account ? { owner: { uid: account.uid, gid: account.gid } } : {}) });
      } catch (e) {
        return maildirFailure(dir, e as NodeJS.ErrnoException);
      }
      written.add(user);
    }
    if (mailboxes.length) done.push('delivered to maildir');
    if (forwards.length) {
      try {
        const id = await this.d.resubmit(sender, forwards, Buffer.concat([Buffer.from(`Delivered-To: ${lower}\r\n`, 'utf8'), message]));
        done.push(`forwarded as ${id}`);
      } catch (e) {
        return { status: '4.3.0', reason: `cannot queue the forwarded copy: ${(e as Error).message}; will try again` };
      }
    }
    return { status: '2.0.0', reason: done.join(', ') };
  }
}

function maildirFailure(dir: string, e: NodeJS.ErrnoException): Dsn {
  if (e.code === 'EDQUOT') return { status: '4.2.2', reason: `maildir ${dir}: mailbox is over its quota` };
  if (e.code === 'ENOSPC') return { status: '4.3.1', reason: `maildir ${dir}: no space left on the device` };
  return { status: '4.2.0', reason: `cannot write to maildir ${dir}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ') };
}

async function readAll(msg: OutgoingMessage): Promise<Buffer> {
  if (msg.bytes) return msg.bytes;
  const chunks: Buffer[] = [];
  for await (const c of msg.body() as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The header section (UTF-8, RFC 6532), at most MAX_HEAD bytes: enough for the Delivered-To check. */
function headerSection(message: Buffer): string {
  return splitMessage(message).head.subarray(0, MAX_HEAD).toString('utf8');
}

function deliveredTo(head: string): string[] {
  const out: string[] = [];
  for (const m of head.matchAll(/^Delivered-To:[ \t]*([^\r\n]*)/gim)) out.push(m[1]!.trim().toLowerCase());
  return out;
}

/** Maildir files use Unix line ends (qmail's maildir(5)); the spool has CRLF only. */
function toUnix(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length);
  let n = 0;
  let from = 0;
  for (;;) {
    const i = message.indexOf('\r\n', from);
    if (i < 0) break;
    n += message.copy(out, n, from, i);
    out[n++] = 0x0a;
    from = i + 2;
  }
  n += message.copy(out, n, from);
  return out.subarray(0, n);
}
