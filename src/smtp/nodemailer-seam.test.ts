// The nodemailer members nodemailer-seam.ts relies on, driven in the real library:
// a real SMTPConnection (nodemailer 10.6.0) against a real smtp-server over loopback.
// Each test fails when a member disappears or changes meaning.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { testCerts } from '../../test/peers/certs.js';
import { SeamConnection } from './nodemailer-seam.js';

const certs = testCerts();
const servers: SMTPServer[] = [];
after(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

interface Upstream { port: number; rcpts: Array<{ address: string; args: unknown }>; bodies: string[] }

async function upstream(options: SMTPServerOptions = {}): Promise<Upstream> {
  const up: Omit<Upstream, 'port'> = { rcpts: [], bodies: [] };
  const server = new SMTPServer({
    logger: false, disableReverseLookup: true, authOptional: true, closeTimeout: 200,
    key: certs.valid.key, cert: certs.valid.cert, hideDSN: false, authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    onAuth: (_a, _s, cb) => cb(null, { user: 'u' }),
    onRcptTo: (a, _s, cb) => { up.rcpts.push({ address: a.address, args: a.args }); cb(); },
    onData: (stream, _s, cb) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => { up.bodies.push(Buffer.concat(parts).toString('latin1')); cb(); });
    },
    ...options,
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { ...up, port: (server.server.address() as AddressInfo).port };
}

/** Records the send streams nodemailer creates through the seam. */
class Recording extends SeamConnection {
  readonly streams: Array<{ _transform: { name: string } }> = [];
  override _createSendStream(callback: unknown): ReturnType<SeamConnection['_createSendStream']> {
    const stream = super._createSendStream(callback);
    this.streams.push(stream);
    return stream;
  }
}

async function connect(port: number, opts: { ignoreTLS?: boolean } = {}): Promise<Recording> {
  const conn = new Recording({ host: '127.0.0.1', port, name: 'relay.test', tls: { rejectUnauthorized: false }, ...opts });
  await new Promise<void>((resolve, reject) => { conn.once('error', reject); conn.connect(() => resolve()); });
  return conn;
}

function send(conn: SeamConnection, to: string[], body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => conn.send({ from: 'a@relay.test', to }, Readable.from([body]), (err) => (err ? reject(err) : resolve())));
}

describe('nodemailer seam', () => {
  it('offers(), authMechanisms and socket report what the EHLO and STARTTLS gave', async () => {
    const up = await upstream();
    const conn = await connect(up.port);
    assert.equal(conn.offers('DSN'), true);
    assert.equal(conn.offers('SMTPUTF8'), true);
    assert.deepEqual([...conn.authMechanisms].sort(), ['CRAM-MD5', 'LOGIN', 'PLAIN']);
    assert.ok(conn.secure);
    assert.ok(conn.socket instanceof tls.TLSSocket, 'the TLS socket after STARTTLS');
    assert.match(conn.socket.getProtocol() ?? '', /^TLSv1\.[23]$/);
    conn.close();

    const bare = await upstream({ hideDSN: true, hideSMTPUTF8: true, authMethods: ['PLAIN', 'DIGEST-MD5'] });
    const plain = await connect(bare.port, { ignoreTLS: true });
    assert.equal(plain.offers('DSN'), false);
    assert.equal(plain.offers('SMTPUTF8'), false);
    assert.deepEqual([...plain.authMechanisms], ['PLAIN', 'DIGEST-MD5'], 'also a mechanism nodemailer does not implement');
    assert.ok(plain.socket && !(plain.socket instanceof tls.TLSSocket), 'the plaintext socket');
    plain.close();
  });

  it('rcptParams gives each RCPT its own NOTIFY/ORCPT, only where DSN is offered', async () => {
    const up = await upstream();
    const conn = await connect(up.port);
    conn.rcptParams.set('b@example.net', ' NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net');
    conn.rcptParams.set('c@example.net', ' NOTIFY=NEVER');
    await send(conn, ['b@example.net', 'c@example.net', 'd@example.net'], Buffer.from('Subject: x\r\n\r\nx\r\n'));
    const notify = up.rcpts.map((r) => (r.args as Record<string, unknown>)['NOTIFY'] ?? null);
    assert.deepEqual(notify, ['SUCCESS,FAILURE', 'NEVER', null]);
    assert.equal((up.rcpts[0]!.args as Record<string, unknown>)['ORCPT'], 'rfc822;b@example.net');
    conn.close();

    const bare = await upstream({ hideDSN: true });
    const plain = await connect(bare.port);
    plain.rcptParams.set('b@example.net', ' NOTIFY=NEVER');
    await send(plain, ['b@example.net'], Buffer.from('Subject: x\r\n\r\nx\r\n'));
    assert.deepEqual(bare.rcpts.map((r) => r.args), [false], 'no parameters to a server without DSN');
    plain.close();
  });

  it('the send stream dot-stuffs with the fast path and falls back for bare line ends', async () => {
    const up = await upstream();
    const conn = await connect(up.port);
    const clean = '.first\r\nmiddle\r\n.\r\n..two\r\nend\r\n';
    await send(conn, ['b@example.net'], Buffer.from(clean));
    await send(conn, ['b@example.net'], Buffer.from('.bare\nlf\n.\nend'));
    assert.deepEqual(up.bodies, [clean, '.bare\r\nlf\r\n.\r\nend\r\n']);
    // nodemailer made each message's stream with _createSendStream(), and the fast path was put in
    assert.deepEqual(conn.streams.map((s) => s._transform.name), ['transform', 'transform']);
    conn.close();
  });
});
