// Writes committed messages straight into a data_dir's queue, in the format
// docs/ARCHITECTURE.md ("The spool on disk") describes, independently of the
// spool code: many of them fast (no fsync), for tests of large queues.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export interface QueueFileOptions {
  readonly sender?: string;
  readonly recipient?: string;
  /** Also write state/ID.json: the recipient deferred, next try in an hour. */
  readonly deferred?: boolean;
  /** Arrival of the first message (epoch ms; the ids follow from it): the same value writes over the same files. Default: an hour ago. */
  readonly at?: number;
}

/** `count` messages of about 1 KB each in dataDir/queue/messages; returns their ids, sorted. */
export function writeQueueFiles(dataDir: string, count: number, opts: QueueFileOptions = {}): string[] {
  const queue = path.join(dataDir, 'queue');
  for (const d of ['tmp', 'messages', 'state', 'corrupt']) fs.mkdirSync(path.join(queue, d), { recursive: true, mode: 0o700 });
  const sender = opts.sender ?? 'app@client.test';
  const recipient = opts.recipient ?? 'someone@example.net';
  const base = opts.at ?? Date.now() - 3_600_000;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    // 11 hex digits of milliseconds, 3 of sequence, 4 "pid" digits that no real writer uses here
    const id = (base + i).toString(16).toUpperCase().padStart(11, '0') + '000' + 'FFFE';
    const envelope = {
      sender, recipients: [{ address: recipient }], arrived: new Date(base + i).toISOString(), body: '7BIT',
      client: { address: '127.0.0.1', hostname: 'localhost', helo: 'client.test', protocol: 'ESMTP' }, id,
    };
    const body = `Received: from client.test by relay.test (smarthost) with ESMTP id ${id}\r\n` +
      `Subject: message ${i}\r\n\r\n${'x'.repeat(76)}\r\n`.padEnd(1000, 'y') + '\r\n';
    const head = Buffer.from(`smarthost-queue 2\n${JSON.stringify(envelope)}\n`, 'utf8');
    const bytes = Buffer.concat([head, Buffer.from(body, 'latin1')]);
    const trailer = Buffer.alloc(16);
    trailer.write('shq2', 0, 'latin1');
    trailer.writeUInt32BE(zlib.crc32(bytes) >>> 0, 4);
    trailer.writeBigUInt64BE(BigInt(bytes.length), 8);
    fs.writeFileSync(path.join(queue, 'messages', id), Buffer.concat([bytes, trailer]), { mode: 0o600 });
    if (opts.deferred) {
      const state = { held: false, recipients: [{ address: recipient, state: 'deferred', attempts: 1,
        nextAttempt: new Date(Date.now() + 3_600_000).toISOString(), lastReply: '451 4.3.0 try again later' }] };
      fs.writeFileSync(path.join(queue, 'state', `${id}.json`), JSON.stringify(state), { mode: 0o600 });
    }
    ids.push(id);
  }
  return ids;
}
