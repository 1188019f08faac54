// PortSense against real loopback peers: a TLS listener, a plain SMTP greeter, a silent one.
// Each answer is asked once per address and port and remembered for ten minutes.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import selfsigned from 'selfsigned';
import { PortSense } from './port-sense.js';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** Listens on 127.0.0.1:0; counts connections. */
async function listen(server: net.Server): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  server.on('connection', (s: net.Socket) => { n++; sockets.add(s); s.on('error', () => undefined); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { port: (server.address() as net.AddressInfo).port, connections: () => n };
}

const peer = (port: number) => ({ host: '127.0.0.1', ip: '127.0.0.1', port });

describe('PortSense', () => {
  it('tells a port that expects TLS from the first byte from one that greets in plaintext', async () => {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    const implicit = await listen(tls.createServer({ cert: pems.cert, key: pems.private }));
    const plain = await listen(net.createServer((s) => s.write('220 plain.test ESMTP\r\n')));
    const silent = await listen(net.createServer(() => undefined));
    const sense = new PortSense();
    assert.equal(await sense.speaksTls(peer(implicit.port), 2000), true);
    assert.equal(await sense.speaksTls(peer(plain.port), 2000), false);
    assert.equal(await sense.plainGreeting(peer(plain.port), 2000), '220 plain.test ESMTP');
    assert.equal(await sense.plainGreeting(peer(silent.port), 200), undefined);
  });

  it('asks once per address and port, and again after ten minutes', async () => {
    let now = 0;
    const plain = await listen(net.createServer((s) => s.write('220 plain.test ESMTP\r\n')));
    const sense = new PortSense(() => now);
    await sense.plainGreeting(peer(plain.port), 2000);
    await sense.plainGreeting(peer(plain.port), 2000);
    assert.equal(plain.connections(), 1);
    now += 10 * 60_000;
    await sense.plainGreeting(peer(plain.port), 2000);
    assert.equal(plain.connections(), 2);
  });
});
