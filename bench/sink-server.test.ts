// Self-test of the relay bench's counting sink (bench/sink-server.ts), started
// as the bench starts it (bench/lib/sink.ts) and driven by the clients it must
// serve: nodemailer's SMTPConnection (smarthost's own client), a raw socket
// sending a pipelined transaction 1 byte at a time, and swaks.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { startSink, type Sink } from './lib/sink.js';

type Client = InstanceType<typeof SMTPConnection>;

/** Reports are batched every 25 ms: poll until cond holds, up to 2 s. */
async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function message(id: number | undefined, body: string): string {
  const bench = id === undefined ? '' : `X-Bench-Id: ${id}\r\n`;
  return `Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\nFrom: a@example.org\r\nTo: b@example.net\r\n${bench}Subject: t\r\n\r\n${body}`;
}

test('nodemailer delivers three messages in one connection: ids 7 and 8, one other', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const client: Client = new SMTPConnection({ host: '127.0.0.1', port: sink.port, name: 'client.test', ignoreTLS: true, connectionTimeout: 2000 });
  await new Promise<void>((resolve, reject) => { client.once('error', reject); client.connect(() => resolve()); });
  t.after(() => client.close());
  // Lines "." and ".." (stuffed to ".." and "..." on the wire) must not end the message.
  const tricky = `.\r\n..\r\n.x\r\n${'y'.repeat(76).concat('\r\n').repeat(Math.ceil(200 * 1024 / 78))}.\r\nlast\r\n`;
  const bodies: [number | undefined, string][] = [[7, tricky], [undefined, 'no id\r\n'], [8, 'short\r\n']];
  for (const [id, body] of bodies) {
    await new Promise((resolve, reject) =>
      client.send({ from: 'a@example.org', to: ['b@example.net'] }, message(id, body), (err, info) => (err ? reject(err) : resolve(info))));
  }
  await new Promise<void>((resolve) => { client.once('end', resolve); client.quit(); }); // else the sink's stop waits for it
  await waitFor('ids 7 and 8 and one other', () => sink.arrivals.has(7) && sink.arrivals.has(8) && sink.other() === 1);
  assert.deepEqual([...sink.arrivals.keys()].sort(), [7, 8]);
  assert.equal(sink.other(), 1);
  assert.equal(sink.duplicates(), 0);
  assert.equal(sink.connections(), 1);
});

test('a pipelined transaction sent 1 byte at a time gets every reply, in order', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const socket = net.connect(sink.port, '127.0.0.1');
  socket.setNoDelay(true);
  t.after(() => socket.destroy());
  let replies = '';
  socket.on('data', (d: Buffer) => { replies += d.toString('latin1'); });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  const dribble = async (text: string) => {
    for (const byte of Buffer.from(text)) { socket.write(Buffer.of(byte)); await sleep(1); }
  };
  await dribble('EHLO client.test\r\nMAIL FROM:<a@example.org> SIZE=100\r\nrcpt to:<b@example.net>\r\nDATA\r\n');
  await waitFor('354', () => replies.includes('\r\n354 '));
  await dribble('From: a@example.org\r\nX-Bench-Id: 42\r\n\r\n..x\r\n..\r\nend\r\n.\r\nQUIT\r\n');
  await closed;
  const codes = replies.split('\r\n').filter((l) => l).map((l) => l.slice(0, 4));
  assert.deepEqual(codes, ['220 ', '250-', '250-', '250-', '250-', '250-', '250 ', '250 ', '250 ', '354 ', '250 ', '221 ']);
  assert.match(replies, /^220 sink\.test ESMTP bench sink\r\n/);
  assert.match(replies, /250-PIPELINING\r\n/);
  assert.doesNotMatch(replies, /CHUNKING|STARTTLS|AUTH/);
  assert.match(replies, /250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n354 .*\r\n250 2\.0\.0 Ok: queued by sink\r\n221 2\.0\.0 Bye\r\n$/);
  await waitFor('id 42', () => sink.arrivals.has(42));
  assert.equal(sink.other(), 0);
});

test('swaks delivers to the sink', async (t) => {
  const swaks = fs.existsSync('/usr/sbin/swaks') ? '/usr/sbin/swaks' : 'swaks';
  const sink: Sink = await startSink();
  t.after(() => sink.stop());
  const args = ['--server', `127.0.0.1:${sink.port}`, '--to', 'a@b.test', '--from', 'c@d.test', '--header', 'X-Bench-Id: 99', '--silent', '2'];
  try {
    await promisify(execFile)(swaks, args, { timeout: 10_000 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') assert.fail('swaks is not installed (not in /usr/sbin or on PATH); install it (apt-get install swaks)');
    throw e;
  }
  await waitFor('id 99', () => sink.arrivals.has(99));
  assert.equal(sink.other(), 0);
});
