// Intake honours the spool's backpressure (queue/spool.ts Incoming.write()): while a write
// has not resolved, no more of the message is read.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Envelope } from '../mail/envelope.js';
import type { Incoming, NewEnvelope, Spool } from '../queue/spool.js';
import { intake } from './intake.js';

/** A spool whose writes resolve only when the test says so: a slow disk or database. */
function slowSpool() {
  const writes: Buffer[] = [];
  const gates: Array<() => void> = [];
  const incoming: Incoming = {
    id: '0000000000000000AB',
    write(chunk) { writes.push(chunk); return new Promise<void>((resolve) => gates.push(resolve)); },
    async commit() { return { ...envelope, id: incoming.id, size: writes.reduce((n, b) => n + b.length, 0) } as Envelope; },
    async abort() { /* nothing kept */ },
  };
  let envelope: Omit<NewEnvelope, 'id'>;
  const spool = { async receive(e: Omit<NewEnvelope, 'id'>) { envelope = e; return incoming; } } as unknown as Spool;
  return { spool, writes, open: () => { for (const g of gates.splice(0)) g(); } };
}

const envelope: Omit<NewEnvelope, 'id'> = {
  sender: 's@example.com', recipients: [{ address: 'r@example.net' }], arrived: new Date(0).toISOString(),
  client: { address: '192.0.2.1', hostname: 'c.example', helo: 'c', protocol: 'ESMTP' },
};

describe('intake', () => {
  it('reads no more of the message while the spool has not taken the last chunk (backpressure)', async () => {
    const s = slowSpool();
    const data = new PassThrough();
    const result = intake(data, envelope, s.spool, { messageSize: 1_000_000, hops: 50, headerSize: 100_000 }, { by: 'relay.test', showAuthUser: false }, () => undefined);
    await new Promise((r) => setImmediate(r));
    data.write('Subject: one\r\n\r\n');
    data.write('second chunk\r\n');
    data.end('third chunk\r\n');
    await new Promise((r) => setImmediate(r));
    // the Received header and the first chunk: the second waits for the spool
    assert.equal(s.writes.length, 2, 'one message chunk taken, the rest waits');
    assert.equal(data.isPaused(), true);
    for (let i = 0; i < 10 && !data.readableEnded; i++) { s.open(); await new Promise((r) => setImmediate(r)); }
    s.open();
    const r = await result;
    assert.equal(r.ok, true);
    assert.match(Buffer.concat(s.writes).toString(), /Subject: one\r\n\r\nsecond chunk\r\nthird chunk\r\n$/);
  });
});
