// What every Spool (queue/spool.ts) must do, as tests any implementation runs: the file store
// (src/queue/spool-conformance.test.ts) and the PostgreSQL store (src/queue/pg-spool.test.ts).
// A "crash" is a store abandoned without close() and opened again, as a kill -9 leaves it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { DeliveryState, NewEnvelope, Spool } from '../../src/queue/spool.js';

export interface SpoolUnderTest {
  /** A new instance on the same store (after a restart or a crash), recovered. */
  open(): Promise<Spool>;
  /** A fault that makes the next commit fail (the disk's fdatasync, the database's COMMIT); returns the undo. */
  failCommits(): (() => void) | Promise<() => Promise<void>>;
}

export interface SpoolFactory {
  /** A fresh, empty store. */
  create(): Promise<SpoolUnderTest>;
}

const envelope = (n: number, recipients = [`r${n}@example.net`]): Omit<NewEnvelope, 'id'> => ({
  sender: `s${n}@example.com`,
  recipients: recipients.map((address) => ({ address })),
  client: { address: '192.0.2.7', hostname: 'client.example.com', helo: 'client', protocol: 'ESMTP' },
  arrived: new Date(1_700_000_000_000 + n).toISOString(),
});

export async function bytesOf(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function put(sp: Spool, n: number, body: Buffer): Promise<string> {
  const m = await sp.receive(envelope(n));
  await m.write(body);
  return (await m.commit()).id;
}

const body = (n: number, size = 300) => Buffer.from(`Subject: ${n}\r\n\r\n${'x'.repeat(size)}\r\n`);

export function spoolConformance(name: string, factory: SpoolFactory): void {
  describe(`Spool conformance: ${name}`, () => {
    it('keeps a committed message, envelope and bytes, across a crash', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const id = await put(sp, 1, body(1));
      const after = await store.open(); // sp is abandoned, not closed
      const e = await after.get(id);
      assert.equal(e?.envelope.sender, 's1@example.com');
      assert.deepEqual(e?.envelope.recipients.map((r) => r.address), ['r1@example.net']);
      assert.ok((await bytesOf(after.open(id))).equals(body(1)));
      assert.deepEqual((await after.list()).map((x) => x.envelope.id), [id]);
      await after.close();
    });

    it('shows nothing of a message before its commit, and nothing after a crash before it', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const m = await sp.receive(envelope(2));
      await m.write(body(2));
      assert.deepEqual(await sp.list(), []);
      assert.equal(await sp.get(m.id), undefined);
      const after = await store.open();
      assert.deepEqual(await after.list(), []);
      if (after.unclaimed) assert.deepEqual(await after.unclaimed(() => false, Date.now() + 60_000), [], "nor for the rescan"); // (a shared store has no rescan)
      await after.close();
    });

    it('leaves nothing after abort(), also called twice', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const m = await sp.receive(envelope(3));
      await m.write(body(3));
      await m.abort();
      await m.abort();
      assert.deepEqual(await sp.list(), []);
      await sp.close();
    });

    it('keeps per-recipient state and the held flag across a crash', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const m = await sp.receive(envelope(4, ['a@example.net', 'b@example.net']));
      await m.write(body(4));
      const id = (await m.commit()).id;
      const state: DeliveryState = {
        held: true,
        recipients: [
          { address: 'a@example.net', state: 'sent', attempts: 1, lastReply: '250 ok', dsn: '2.0.0' },
          { address: 'b@example.net', state: 'deferred', attempts: 2, nextAttempt: new Date(1_700_000_600_000).toISOString(), lastReply: '451 later', dsn: '4.3.0' },
        ],
      };
      await sp.saveState(id, state);
      const after = await store.open();
      assert.deepEqual((await after.get(id))?.state, state);
      await after.saveState(id, { ...state, held: false });
      assert.equal((await (await store.open()).get(id))?.state.held, false, 'released');
      await after.close();
    });

    it('removes a message for good', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const keep = await put(sp, 5, body(5));
      const gone = await put(sp, 6, body(6));
      assert.equal(await sp.remove(gone), true);
      assert.equal(await sp.get(gone), undefined);
      const after = await store.open();
      assert.deepEqual((await after.list()).map((x) => x.envelope.id), [keep]);
      await after.close();
    });

    it('gives concurrent writers distinct ids and keeps every message whole', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const ids = await Promise.all(Array.from({ length: 25 }, (_, i) => put(sp, 100 + i, body(100 + i, 1000 + i))));
      assert.equal(new Set(ids).size, 25);
      const after = await store.open();
      for (const [i, id] of ids.entries()) assert.ok((await bytesOf(after.open(id))).equals(body(100 + i, 1000 + i)), `message ${i} whole`);
      await after.close();
    });

    it('streams a large message in chunks and gives back the same bytes', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const m = await sp.receive(envelope(7));
      const chunk = Buffer.alloc(64 * 1024);
      const sent: Buffer[] = [];
      for (let i = 0; i < 80; i++) { // 5 MB
        const c = Buffer.from(chunk.fill(0x41 + (i % 26)));
        sent.push(c);
        await m.write(c);
      }
      const e = await m.commit();
      assert.equal(e.size, 80 * 64 * 1024);
      assert.ok((await bytesOf((await store.open()).open(e.id))).equals(Buffer.concat(sent)));
      await sp.close();
    });

    it('rejects a commit the store cannot make durable, and keeps nothing of it', async () => {
      const store = await factory.create();
      const sp = await store.open();
      const m = await sp.receive(envelope(8));
      await m.write(body(8));
      const undo = await store.failCommits();
      try {
        await assert.rejects(m.commit());
      } finally { await undo(); }
      await m.abort();
      assert.deepEqual(await sp.list(), []);
      assert.deepEqual(await (await store.open()).list(), []);
      await sp.close();
    });
  });
}
