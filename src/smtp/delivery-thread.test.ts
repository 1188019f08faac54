// The delivery thread against a real smtp-server on loopback: a message goes
// out from the worker, and a worker that dies fails what was under way and
// comes back for the next attempt.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { FsSpool } from '../queue/fs-spool.js';
import { DeliveryThread } from './delivery-thread.js';
import type { RemoteDestination } from './transport.js';
import { parseConfig } from '../config/load.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-dthread-'));
const received: string[] = [];
const server = new SMTPServer({
  authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
  onData(stream, session, cb) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => { received.push(`${session.envelope.mailFrom && session.envelope.mailFrom.address} ${Buffer.concat(chunks).toString('latin1')}`); cb(); });
  },
});
// terminating the worker resets its connection: smtp-server reports that as an 'error', which is expected here
server.on('error', () => undefined);
after(async () => { await new Promise<void>((r) => server.close(() => r())); fs.rmSync(dir, { recursive: true, force: true }); });

describe('DeliveryThread', () => {
  it('delivers from the worker (sender rewritten there) and restarts a worker that died', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.server.address() as import('node:net').AddressInfo).port;
    const { config } = parseConfig(`hostname = "relay.test"\n[relay]\nurl = "smtp://127.0.0.1:${port}"\ntls = "none"\n[mx]\nnameservers = ["127.0.0.1:9"]\n`, path.join(dir, 'x.toml'));
    const spool = new FsSpool(dir);
    await spool.recover();
    const inc = await spool.receive({ sender: 'root', recipients: [{ address: 'b@example.net' }], client: { address: '127.0.0.1', hostname: 'localhost', helo: 'x', protocol: 'ESMTP' }, arrived: new Date().toISOString() });
    await inc.write(Buffer.from('Subject: t\r\n\r\nhello\r\n'));
    const env = await inc.commit();
    const t = new DeliveryThread({ dataDir: dir, queue: config!.queue, ehloName: 'relay.test', mx: config!.mx, deadMs: 1000, rules: { map: {}, hostname: 'relay.test' }, dkim: [] });
    try {
      const dest: RemoteDestination = { kind: 'upstream', key: 'relay', name: 'relay', upstream: config!.relay! };
      const msg = { id: env.id, sender: env.sender, recipients: env.recipients, size: env.size, eightBit: false, body: () => spool.open(env.id) };
      const [r] = await t.deliver(dest, msg);
      assert.equal(r!.outcome, 'sent', JSON.stringify(r));
      assert.match(received[0]!, /^root@relay\.test Subject: t\r\n\r\nhello\r\n$/);

      const worker = (t as unknown as { worker: import('node:worker_threads').Worker }).worker;
      const underWay = t.deliver(dest, msg).then(() => 'sent', (e: Error) => e.message);
      await worker.terminate();
      // the attempt under way either finished just before, or fails (and the queue manager defers it)
      assert.match(await underWay, /^sent$|the delivery thread stopped/);
      // the replacement comes after a second; on a busy machine maybe later
      const until = Date.now() + 10_000;
      while ((t as unknown as { exited: boolean }).exited && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      const [again] = await t.deliver(dest, msg);
      assert.equal(again!.outcome, 'sent');
    } finally {
      await t.close();
      spool.close();
    }
  });
});
