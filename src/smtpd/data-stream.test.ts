// Our DATA phase inside the real smtp-server 3.21.6: the library members
// data-stream.ts and server.ts rely on exist and are called (these tests fail
// when an upgrade renames or bypasses one), and a real connection uses our
// parser before and after STARTTLS.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { RawSmtp } from '../../test/helpers/smtp-client.js';
import { testCerts } from '../../test/peers/certs.js';
import { SmtpdStream } from './data-stream.js';
import { SmtpdServer, type Connection } from './smtpd-server.js';

describe('smtp-server members we rely on', () => {
  it('exist with the shapes we call', () => {
    const stream = SMTPStream.prototype as unknown as Record<string, unknown>;
    for (const name of ['_feedDataStream', '_countDataBytes', '_endDataMode', 'startDataMode', 'continue']) {
      assert.equal(typeof stream[name], 'function', `SMTPStream.prototype.${name}`);
    }
    assert.equal((stream['_feedDataStream'] as (...a: unknown[]) => void).length, 2, '_feedDataStream(chunk, done)');
    assert.equal((stream['_endDataMode'] as (...a: unknown[]) => void).length, 3, '_endDataMode(chunk, remainder, callback)');
    const conn = SMTPConnection.prototype as unknown as Record<string, unknown>;
    assert.equal(typeof conn['_createParser'], 'function', 'SMTPConnection.prototype._createParser');
  });

  it("the library's _write hands DATA chunks to our _feedDataStream, and _endDataMode resumes commands", async () => {
    const s = new SmtpdStream();
    const commands: string[] = [];
    const content: Buffer[] = [];
    let bytes = -1;
    let exceeded: boolean | undefined;
    s.oncommand = (cmd: Buffer, cb?: () => void) => {
      const line = cmd.toString('latin1');
      commands.push(line);
      if (line === 'DATA') {
        const data = s.startDataMode(5);
        data.on('data', (c: Buffer) => content.push(c));
        data.on('end', () => { bytes = s.dataBytes; exceeded = data.sizeExceeded; s.continue(); });
      }
      cb?.();
    };
    const wire = Buffer.from('MAIL FROM:<a@b>\r\nDATA\r\n.x\r\n..y\r\n.\r\nQUIT\r\n', 'latin1');
    for (let i = 0; i < wire.length; i += 3) await new Promise<void>((resolve) => s.write(wire.subarray(i, i + 3), () => resolve()));
    await new Promise<void>((resolve) => s.end(() => resolve()));
    assert.deepEqual(commands, ['MAIL FROM:<a@b>', 'DATA', 'QUIT']);
    assert.equal(Buffer.concat(content).toString('latin1'), 'x\r\n.y\r\n');
    assert.equal(bytes, 7, 'dataBytes counts what was kept');
    assert.equal(exceeded, true, 'sizeExceeded from _countDataBytes (limit 5)');
  });
});

describe('a real SmtpdServer connection', () => {
  const certs = testCerts();
  const parsers: string[] = [];
  const messages: string[] = [];
  const server = new SmtpdServer({
    logger: false, disableReverseLookup: true, authOptional: true, key: certs.valid.key, cert: certs.valid.cert,
    onData(stream, _session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => { messages.push(Buffer.concat(parts).toString('latin1')); cb(null, 'ok'); });
    },
  }, {
    pregreet: false,
    onConnection(conn: Connection) {
      parsers.push((conn as unknown as { _parser: unknown })._parser instanceof SmtpdStream ? 'ours' : 'other');
    },
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('uses SmtpdStream, also for the TLS session after STARTTLS', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.server.address() as AddressInfo).port;
    const c = await RawSmtp.connect(port);
    await c.read();
    await c.cmd('EHLO client.test');
    assert.equal((await c.starttls()).code, 220);
    await c.cmd('EHLO client.test');
    const conn = [...server.connections][0] as unknown as { _parser: unknown };
    assert.ok(conn._parser instanceof SmtpdStream, 'the TLS session parser is ours');
    await c.cmd('MAIL FROM:<a@client.test>');
    await c.cmd('RCPT TO:<b@example.net>');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('.single dot\r\n..double\r\n.\r\n');
    assert.equal((await c.read()).code, 250);
    c.close();
    assert.deepEqual(parsers, ['ours']);
    assert.deepEqual(messages, ['single dot\r\n.double\r\n']);
  });
});
