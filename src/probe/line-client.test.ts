// The probe's line client against raw scripted peers on 127.0.0.1: multi-line replies,
// non-SMTP bytes, timeouts, a peer that hangs up, and SASL exchanges that never show the password.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { connectTcp, LineClient, ProbeIoError, replyText } from './line-client.js';
import { authenticate } from './sasl.js';

const servers: net.Server[] = [];
after(() => { for (const s of servers) s.close(); });

/** A peer that runs `script` on each connection; returns a connected LineClient and what the peer received. */
async function peer(script: (socket: net.Socket, lines: string[]) => void): Promise<{ client: LineClient; received: string[] }> {
  const received: string[] = [];
  const server = net.createServer((socket) => {
    let buf = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) { received.push(buf.slice(0, i)); buf = buf.slice(i + 2); }
    });
    script(socket, received);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = new LineClient(await connectTcp('127.0.0.1', port, 2000));
  return { client, received };
}

describe('probe line client', () => {
  it('reads a multi-line reply whole, split across packets', async () => {
    const { client } = await peer((s) => { s.write('250-mx.test hi\r\n250-PIPE'); setTimeout(() => s.write('LINING\r\n250 SIZE 10\r\n'), 20); });
    const r = await client.read(1000);
    assert.equal(r.code, 250);
    assert.deepEqual(r.lines, ['250-mx.test hi', '250-PIPELINING', '250 SIZE 10']);
    assert.equal(replyText(r), '250-mx.test hi PIPELINING SIZE 10');
    client.close();
  });

  it('a line that is not SMTP comes back with code 0', async () => {
    const { client } = await peer((s) => s.write('HTTP/1.1 400 Bad Request\r\n'));
    const r = await client.read(1000);
    assert.equal(r.code, 0);
    assert.equal(r.lines[0], 'HTTP/1.1 400 Bad Request');
    client.close();
  });

  it('times out when the peer says nothing, and reports a hang-up as ECLOSED', async () => {
    const silent = await peer(() => undefined);
    await assert.rejects(silent.client.read(100), (e) => e instanceof ProbeIoError && e.code === 'ETIMEDOUT');
    silent.client.close();
    const rude = await peer((s) => s.end());
    await assert.rejects(rude.client.read(1000), (e) => e instanceof ProbeIoError && e.code === 'ECLOSED');
  });

  it('connect to a closed port fails with ECONNREFUSED', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await assert.rejects(connectTcp('127.0.0.1', port, 1000), { code: 'ECONNREFUSED' });
  });

  it('AUTH PLAIN sends RFC 4616 credentials; the transcript hides them', async () => {
    const { client, received } = await peer((s) => s.on('data', () => s.write('235 2.7.0 ok\r\n')));
    const r = await authenticate(client, 'PLAIN', 'alice', 'pw-secret', 1000);
    assert.equal(r.code, 235);
    assert.equal(received[0], `AUTH PLAIN ${Buffer.from('\0alice\0pw-secret').toString('base64')}`);
    assert.doesNotMatch(client.transcript.join('\n'), /pw-secret|cHctc2VjcmV0/);
    client.close();
  });

  it('AUTH LOGIN answers both 334 prompts and stops at the first refusal', async () => {
    const replies = ['334 VXNlcm5hbWU6', '334 UGFzc3dvcmQ6', '535 5.7.8 Authentication credentials invalid'];
    const { client, received } = await peer((s) => s.on('data', () => s.write(`${replies.shift()}\r\n`)));
    const r = await authenticate(client, 'LOGIN', 'alice', 'pw', 1000);
    assert.equal(r.code, 535);
    assert.deepEqual(received, ['AUTH LOGIN', Buffer.from('alice').toString('base64'), Buffer.from('pw').toString('base64')]);
    client.close();
  });
});
