// End to end (issue 20): the generated self-signed certificate names the host name, localhost,
// 127.0.0.1, ::1 and the listen addresses, so a client that pins it as its CA verifies a
// connection to 127.0.0.1; one generated before (naming the host only) is replaced.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import selfsigned from 'selfsigned';
import { removeDir, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';

const daemons: RunningDaemon[] = [];
after(async () => { for (const d of daemons) { await d.stop(); removeDir(d.dir); } });

const TOML = '[[listen]]\naddress = "127.0.0.1:0"\ntls = "implicit"\n';

/**
 * A TLS handshake to 127.0.0.1 verified for `name` (an IP address or a host name sent as SNI),
 * with `ca` as the only trusted certificate: 'ok', or the error text.
 */
function verifiedHandshake(port: number, name: string, ca: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca, rejectUnauthorized: true, ...(net.isIP(name) ? {} : { servername: name }) }, () => {
      resolve(s.authorized ? 'ok' : String(s.authorizationError));
      s.destroy();
    });
    s.on('error', (e) => resolve(e.message));
  });
}

describe('self-signed server certificate', () => {
  it('verifies at 127.0.0.1 and localhost with the certificate pinned as CA', async () => {
    const d = await startDaemon({ toml: TOML });
    daemons.push(d);
    const pem = fs.readFileSync(path.join(d.dataDir, 'tls', 'selfsigned.pem'));
    const x = new crypto.X509Certificate(pem);
    for (const n of ['DNS:relay.test', 'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) {
      assert.ok(x.subjectAltName?.includes(n), `${n} in ${x.subjectAltName}`);
    }
    assert.equal(await verifiedHandshake(d.ports[0]!, '127.0.0.1', pem), 'ok');
    assert.equal(await verifiedHandshake(d.ports[0]!, 'localhost', pem), 'ok');
    assert.match(d.logs(), /generated a self-signed certificate for relay\.test .*for relay\.test, localhost, 127\.0\.0\.1, ::1/);
  });

  it('replaces a self-signed certificate that names the host only (as older versions made it)', async () => {
    const dir = tempDir();
    const tlsDir = path.join(dir, 'data', 'tls');
    fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    const old = await selfsigned.generate([{ name: 'commonName', value: 'relay.test' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'relay.test' }] }],
    });
    fs.writeFileSync(path.join(tlsDir, 'selfsigned.pem'), old.cert);
    fs.writeFileSync(path.join(tlsDir, 'selfsigned.key'), old.private, { mode: 0o600 });
    const d = await startDaemon({ toml: TOML, dir });
    daemons.push(d);
    assert.match(d.logs(), /generated a self-signed certificate .*\(the one there lacked some of these names\)/);
    const pem = fs.readFileSync(path.join(tlsDir, 'selfsigned.pem'));
    assert.notEqual(pem.toString(), old.cert);
    assert.equal(await verifiedHandshake(d.ports[0]!, '127.0.0.1', pem), 'ok');
    // the new one is kept at the next start
    await d.stop();
    const again = await startDaemon({ toml: TOML, dir });
    daemons.push(again);
    assert.match(again.logs(), /using the self-signed certificate/);
    assert.equal(fs.readFileSync(path.join(tlsDir, 'selfsigned.pem')).toString(), pem.toString());
  });
});
