// DATA -> spool: streams the message through cleanup (CRLF normalisation,
// header scan) into the spool, enforcing the size and hop limits, and returns
// the reply to send. Resolves only after the spool has fsynced the message,
// so a 250 always means "on disk".
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { HeaderScan, type HeaderFacts } from './header-scan.js';
import { LineEnds } from './line-ends.js';
import { receivedHeader } from './received.js';
import type { Envelope } from '../mail/envelope.js';
import { replies } from '../mail/replies.js';
import type { Reply } from '../mail/reply.js';
import { SpoolUnavailableError, type NewEnvelope, type Spool } from '../queue/spool.js';

export interface IntakeLimits { readonly messageSize: number; readonly hops: number; readonly headerSize: number }

export type IntakeResult =
  | { readonly ok: true; readonly envelope: Envelope; readonly messageId?: string; readonly reply: Reply; /** end of data -> on disk */ readonly commitMs: number }
  | { readonly ok: false; readonly reply: Reply; readonly id?: string; readonly error?: Error; readonly storage?: boolean };

export async function intake(
  data: Readable, envelope: Omit<NewEnvelope, 'id'>, spool: Spool, limits: IntakeLimits,
  header: { readonly by: string; readonly showAuthUser: boolean }, onQueueId: (id: string) => void,
): Promise<IntakeResult> {
  let incoming;
  try {
    incoming = await spool.receive(envelope);
  } catch (e) {
    drain(data);
    return storageFailure(e);
  }
  onQueueId(incoming.id);
  const lineEnds = new LineEnds();
  const headers = new HeaderScan();
  let received = 0;
  let oversized = false;
  let storageError: unknown;
  const store = (buf: Buffer) => incoming.write(buf).catch((e: unknown) => { storageError ??= e; });
  try {
    void store(receivedFor(envelope, header, incoming.id));
    // 'data' events rather than `for await`, which costs more of the event loop (bench/NOTES.md)
    data.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (oversized || storageError !== undefined) return; // keep reading so the client gets its reply, store nothing
      if (received > limits.messageSize) { oversized = true; return; }
      const clean = lineEnds.push(chunk);
      headers.push(clean);
      // backpressure: no more reading (so no more from the socket) until the spool has taken this
      data.pause();
      void store(clean).then(() => data.resume());
    });
    await finished(data);
    if (!oversized && storageError === undefined) await store(lineEnds.end());
  } catch (e) {
    await incoming.abort();
    drain(data);
    return { ok: false, reply: replies.transactionAborted(), id: incoming.id, error: e as Error };
  }
  if (storageError !== undefined) {
    await incoming.abort();
    return storageFailure(storageError, incoming.id);
  }
  const refused = oversized ? replies.sizeExceeded() : refusalOf(headers.facts, limits);
  if (refused) {
    await incoming.abort();
    return { ok: false, reply: refused, id: incoming.id };
  }
  try {
    const ended = performance.now();
    const stored = await incoming.commit();
    return {
      ok: true, envelope: stored, reply: replies.queued(stored.id), commitMs: performance.now() - ended,
      ...(headers.facts.messageId !== undefined ? { messageId: headers.facts.messageId } : {}),
    };
  } catch (e) {
    return storageFailure(e, incoming.id);
  }
}

/** Our Received: field, first in the stored message; UTF-8 names and addresses (RFC 6531) only with SMTPUTF8. */
function receivedFor(envelope: Omit<NewEnvelope, 'id'>, header: { readonly by: string; readonly showAuthUser: boolean }, id: string): Buffer {
  return Buffer.from(receivedHeader({
    client: envelope.client, by: header.by, showAuthUser: header.showAuthUser, id, date: new Date(envelope.arrived),
    recipients: envelope.recipients.map((r) => r.address), smtputf8: envelope.smtputf8 === true,
  }), 'utf8');
}

/** Why a message read whole is refused, or undefined. */
function refusalOf(facts: HeaderFacts, limits: IntakeLimits): Reply | undefined {
  // refused rather than cut: a strict next hop would refuse it after our 250 (Postfix truncates instead)
  if (facts.bytes > limits.headerSize) return replies.headerTooLarge();
  if (facts.received >= limits.hops) return replies.tooManyHops();
  return undefined;
}

/** Disk full, quota, I/O error: 452 4.3.1; the queue's database unreachable: 451 4.3.0. The client retries later; nothing was kept. */
function storageFailure(e: unknown, id?: string): IntakeResult {
  const reply = e instanceof SpoolUnavailableError ? replies.queueWriteError() : replies.insufficientStorage();
  return { ok: false, reply, error: e as Error, storage: true, ...(id ? { id } : {}) };
}

function drain(data: Readable): void {
  data.on('error', () => undefined);
  data.resume();
}
