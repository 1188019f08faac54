// The smtp-server members smtp-server-seam.ts relies on, driven in the real library
// (smtp-server 3.21.6, a real SMTPServer on 127.0.0.1:0 and a raw client): each test
// fails when a member disappears or changes meaning, or when a canned reply text
// libraryReply() recognises changes.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';
import type { SMTPServerOptions } from 'smtp-server';
import { RawSmtp } from '../../test/helpers/smtp-client.js';
import { waitFor } from '../../test/helpers/wait.js';
import { testCerts } from '../../test/peers/certs.js';
import { SmtpdServer, type Connection } from './smtpd-server.js';
import { libraryReply, type LibraryReply } from './smtp-server-seam.js';

const certs = testCerts();
const servers: SmtpdServer[] = [];
after(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

interface Probe { port: number; conns: Connection[]; replies: Array<{ code: number; text: string }>; lines: string[]; server: SmtpdServer }

/** A real smtp-server with our Connection; every reply and command line is recorded through the seam's filters. */
async function start(options: SMTPServerOptions = {}): Promise<Probe> {
  const probe: Omit<Probe, 'port' | 'server'> = { conns: [], replies: [], lines: [] };
  const server = new SmtpdServer({
    logger: false, disableReverseLookup: true, authOptional: true, allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'], closeTimeout: 200, key: certs.valid.key, cert: certs.valid.cert,
    onAuth: (_a, _s, cb) => cb(null, { user: 'u' }),
    ...options,
  }, {
    pregreet: false,
    onConnection(conn) {
      probe.conns.push(conn);
      conn.replyFilter = (code, data, context, send) => {
        probe.replies.push({ code, text: Array.isArray(data) ? data.join('\n') : data ?? '' });
        send(code, data, context);
      };
      conn.commandFilter = (command) => { probe.lines.push(command.toString('latin1')); return true; };
    },
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { ...probe, port: (server.server.address() as AddressInfo).port, server };
}

async function client(p: Probe): Promise<RawSmtp> {
  const c = await RawSmtp.connect(p.port);
  assert.equal((await c.read()).code, 220);
  return c;
}

/** What libraryReply() makes of the last reply the library sent. */
const lastKind = (p: Probe): LibraryReply | undefined => {
  const r = p.replies.at(-1)!;
  return libraryReply(r.code, r.text);
};

describe('smtp-server seam: connection state', () => {
  it('commandFilter sees each line first; dispatch and whenWritable hand it on and resume the parser', async () => {
    const p = await start();
    const c = await client(p);
    const conn = p.conns[0]!;
    // the filter answers NOOP itself and resumes with whenWritable(); the pipelined EHLO must still be read
    conn.commandFilter = (command, cb) => {
      p.lines.push(command.toString('latin1'));
      if (command.toString() !== 'NOOP') return true;
      conn.send(250, '2.0.0 mine');
      conn.whenWritable(cb ?? (() => undefined));
      return false;
    };
    c.write('NOOP\r\nEHLO client.test\r\n');
    assert.equal((await c.read()).text, '250 2.0.0 mine');
    assert.match((await c.read()).text, /^250-/);
    assert.deepEqual(p.lines, ['NOOP', 'EHLO client.test']);
    c.close();
  });

  it('authContinues is true exactly for the lines of an AUTH exchange', async () => {
    const p = await start();
    const c = await client(p);
    const conn = p.conns[0]!;
    const seen: Array<[string, boolean]> = [];
    conn.commandFilter = (command) => { seen.push([command.toString(), conn.authContinues]); return true; };
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
    assert.equal((await c.cmd(Buffer.from('u').toString('base64'))).code, 334);
    assert.equal((await c.cmd(Buffer.from('pw').toString('base64'))).code, 235);
    await c.cmd('NOOP');
    assert.deepEqual(seen.map(([, cont]) => cont), [false, false, true, true, false]);
    c.close();
  });

  it('handlerPending while onMailFrom has not called back; inData and awaitingDataReply around the final dot', async () => {
    let release: (() => void) | undefined;
    let dataEnded = false;
    let answer: (() => void) | undefined;
    const p = await start({
      onMailFrom: (_a, _s, cb) => { release = () => cb(); },
      onData: (stream, _s, cb) => {
        stream.resume();
        stream.on('end', () => { dataEnded = true; answer = () => cb(null, 'Ok'); });
      },
    });
    const c = await client(p);
    const conn = p.conns[0]!;
    await c.cmd('EHLO client.test');
    assert.equal(conn.handlerPending, false);
    c.write('MAIL FROM:<a@client.test>\r\n');
    await waitFor(() => release !== undefined, 'onMailFrom');
    assert.equal(conn.handlerPending, true, 'onMailFrom has the callback');
    release!();
    assert.equal((await c.read()).code, 250);
    assert.equal(conn.handlerPending, false);
    await c.cmd('RCPT TO:<b@example.net>');
    assert.equal(conn.inData, false);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal(conn.inData, true);
    assert.equal(conn.awaitingDataReply, false, 'the client still owes the message');
    c.write('Subject: x\r\n\r\nbody\r\n.\r\n');
    await waitFor(() => dataEnded, 'the end of the message');
    assert.equal(conn.awaitingDataReply, true, 'the message is in, the reply is ours to give');
    answer!();
    assert.equal((await c.read()).code, 250);
    assert.equal(conn.inData, false);
    assert.equal(conn.awaitingDataReply, false);
    c.close();
  });

  it('upgrading during the STARTTLS handshake; socket is the TLS one after it', async () => {
    const secured: tls.TLSSocket[] = [];
    const p = await start({ onSecure: (socket, _s, cb) => { secured.push(socket as tls.TLSSocket); cb(); } });
    const c = await client(p);
    const conn = p.conns[0]!;
    const plain = conn.socket;
    assert.equal(plain.remotePort !== undefined && !(plain instanceof tls.TLSSocket), true);
    assert.equal(conn.upgrading, false);
    await c.cmd('EHLO client.test');
    // the client has its 220 but has not started the handshake: the library is upgrading
    c.write('STARTTLS\r\n');
    assert.equal((await c.read()).code, 220);
    await waitFor(() => conn.upgrading, 'upgrading');
    const tlsClient = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const raw = (c as unknown as { socket: import('node:net').Socket }).socket;
      raw.removeAllListeners('data');
      const t = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(t));
      t.once('error', reject);
    });
    await waitFor(() => secured.length === 1, 'onSecure');
    assert.equal(conn.upgrading, false);
    assert.equal(conn.socket, secured[0], 'replies go to the TLS socket onSecure got');
    assert.ok(conn.socket instanceof tls.TLSSocket);
    assert.ok(conn.socket.getProtocol(), 'a TLS socket with a protocol');
    tlsClient.destroy();
  });

  it('ended after QUIT, and after the socket closed', async () => {
    const p = await start();
    const c = await client(p);
    const conn = p.conns[0]!;
    assert.equal(conn.ended, false);
    assert.equal((await c.cmd('QUIT')).code, 221);
    assert.equal(conn.ended, true, 'close() was called');
    await c.waitClosed();
    const c2 = await client(p);
    const conn2 = p.conns[1]!;
    c2.close();
    await waitFor(() => conn2.ended, 'the closed socket seen by the library');
  });
});

describe('smtp-server seam: canned replies', () => {
  it('recognises the replies to commands by their 3.21.6 texts', async () => {
    const p = await start({ size: 100, maxRecipients: 1, maxCommandLength: 200 });
    const c = await client(p);
    const expect = async (line: string, kind: LibraryReply) => {
      await c.cmd(line);
      assert.equal(lastKind(p), kind, `${line} -> ${JSON.stringify(p.replies.at(-1))}`);
    };
    await c.cmd('EHLO client.test');
    assert.equal(lastKind(p), undefined, 'EHLO is not one of them');
    await expect('FOO', 'unrecognized');
    await expect('NOOP', 'ok');
    await expect('MAIL FROM:bad', 'bad sender');
    await expect('MAIL FROM:<a@client.test> SIZE=1000', 'size exceeded');
    await expect('MAIL FROM:<a@client.test>', 'ok');
    await expect('RCPT TO:bad', 'bad recipient');
    await expect('RCPT TO:<b@example.net>', 'ok');
    await expect('RCPT TO:<c@example.net>', 'too many recipients');
    await expect('RSET', 'ok');
    await expect('X'.repeat(300), 'line too long');
    await c.waitClosed();
  });

  it('recognises too many unrecognized commands', async () => {
    const p = await start();
    const c = await client(p);
    for (let i = 0; i < 9; i++) await c.cmd(`BAD${i}`);
    assert.equal((await c.cmd('BAD9')).code, 421);
    assert.equal(lastKind(p), 'too many unrecognized');
  });

  it('recognises the idle timeout and the shutdown', async () => {
    const idle = await start({ socketTimeout: 100 });
    const c = await client(idle);
    assert.equal((await c.read()).code, 421);
    assert.equal(lastKind(idle), 'timeout');
    const stopping = await start();
    const c2 = await client(stopping);
    stopping.server.close();
    assert.equal((await c2.cmd('NOOP')).code, 421);
    assert.equal(lastKind(stopping), 'shutting down');
  });
});
