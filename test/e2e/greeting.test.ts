// End to end: what a new connection costs (issue 15). The greeting goes out at
// once (smtp-server alone would hold it 100 ms), a client that speaks first is
// served unless the listener runs Postfix's pregreet test, TLS sessions resume
// across connections and reloads, and certificate files are read at start and
// reload, never per connection (inbound and outbound).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { testCerts } from '../peers/certs.js';
import { startUpstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function daemon(toml: string, listeners?: number): Promise<RunningDaemon> {
  const d = await startDaemon({ toml, ...(listeners ? { listeners } : {}) });
  cleanups.push(() => removeDir(d.dir), () => d.stop());
  return d;
}

/** Everything the server sends until it closes the connection, after writing `early` right at connect. */
function talkFirst(port: number, early: string, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => s.write(early));
    s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

/** ms from connect() to the first byte of the greeting. */
function greetingDelay(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('data', () => { resolve(performance.now() - t0); s.destroy(); });
    s.on('error', reject);
  });
}

describe('the greeting', () => {
  it('goes out at once: no connection waits for smtp-server\'s 100 ms early-talker pause', async () => {
    const d = await daemon('[[listen]]\naddress = "127.0.0.1:0"\n');
    const port = d.ports[0]!;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) delays.push(await greetingDelay(port));
    // the library's pause is a fixed 100 ms before every greeting; the fastest of five shows whether it is there
    assert.ok(Math.min(...delays) < 50, `greeting delays ${delays.map((x) => x.toFixed(1)).join(', ')} ms`);
  });

  it('serves a client that speaks before the greeting (as Postfix smtpd does) on a listener without pregreet', async () => {
    const d = await daemon('[[listen]]\naddress = "127.0.0.1:0"\n');
    const got = await talkFirst(d.ports[0]!, 'EHLO early.test\r\nQUIT\r\n');
    assert.match(got, /^220 relay\.test ESMTP smarthost\r\n250-relay\.test\r\n[^]*250 SIZE \d+\r\n221 2\.0\.0 Bye\r\n$/);
    assert.doesNotMatch(d.logs(), /PREGREET/);
  });
});

describe('pregreet (Postfix postscreen\'s pregreet test)', () => {
  const toml = [
    '[[listen]]', 'address = "127.0.0.1:0"', 'pregreet = "1s"', 'trusted_networks = ["127.0.0.1/32"]', '',
  ].join('\n');

  it('refuses a client outside trusted_networks that talks before the greeting, with Postfix\'s reply and log line', async () => {
    const d = await daemon(toml);
    const got = await talkFirst(d.ports[0]!, 'EHLO zombie.test\r\n', '127.0.0.2');
    assert.equal(got, '220-relay.test ESMTP\r\n521 5.5.1 Protocol error\r\n');
    const line = await d.waitForLog(/smtpd\[\d+\]: PREGREET .*/);
    assert.match(line, /PREGREET 18 after \d+\.\d\d from \[127\.0\.0\.2\]:\d+: EHLO zombie\.test\\r\\n$/);
    await d.waitForLog(/disconnect from [^[]+\[127\.0\.0\.2\]/);
  });

  it('greets a patient client after the wait, with a multi-line greeting, and takes its mail', async () => {
    const d = await daemon(`${toml}[local]\ndomains = ["relay.test"]\nusers = ["alice"]\n`);
    const c = await RawSmtp.connect(d.ports[0]!, { localAddress: '127.0.0.2' });
    cleanups.push(() => c.close());
    const t0 = performance.now();
    const greeting = await c.read(5000);
    const waited = performance.now() - t0;
    assert.deepEqual(greeting.lines, ['220-relay.test ESMTP', '220 relay.test ESMTP smarthost']);
    assert.ok(waited >= 900, `the greeting's last line came after ${waited.toFixed(0)} ms, before the 1s pregreet wait`);
    assert.equal((await c.cmd('EHLO patient.test')).code, 250);
    assert.match((await sendRaw(c, 'bob@example.org', ['alice@relay.test'], 'Subject: hi\r\n\r\nhello\r\n.\r\n')).text, /^250 2\.0\.0 Ok: queued as /);
    assert.doesNotMatch(d.logs(), /PREGREET/);
  });

  it('is never applied to trusted networks: they are greeted at once', async () => {
    const d = await daemon(toml);
    const got = await talkFirst(d.ports[0]!, 'EHLO cron.test\r\nQUIT\r\n', '127.0.0.1');
    assert.match(got, /^220 relay\.test ESMTP smarthost\r\n250-relay\.test\r\n[^]*221 2\.0\.0 Bye\r\n$/);
    assert.doesNotMatch(d.logs(), /PREGREET/);
  });
});

describe('TLS', () => {
  const certs = testCerts();

  /** The SHA-256 fingerprint of the certificate the implicit-TLS listener presents, and whether `session` was resumed. */
  function handshake(port: number, session?: Buffer): Promise<{ fingerprint: string; reused: boolean; session: Buffer }> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(session ? { session } : {}) });
      s.on('error', reject);
      // TLS 1.3 sends its tickets after the handshake, ahead of the greeting: wait for a ticket, or,
      // once the greeting is in, take the one a resumed session came with (it may get no new one)
      const ticket = new Promise<Buffer>((ok) => {
        s.once('session', ok);
        if (session) s.once('data', () => setImmediate(() => ok(session)));
      });
      const greeting = new Promise<void>((ok) => s.once('data', () => ok()));
      Promise.all([ticket, greeting]).then(([t]) => {
        resolve({ fingerprint: s.getPeerCertificate().fingerprint256, reused: s.isSessionReused(), session: t });
        s.destroy();
      }, reject);
    });
  }

  it('uses a certificate replaced on disk after a reload, and not before', async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'smarthost-cert-'));
    cleanups.push(() => removeDir(dir));
    const pem = path.join(dir, 'relay.pem');
    const key = path.join(dir, 'relay.key');
    fs.writeFileSync(pem, certs.valid.cert);
    fs.writeFileSync(key, certs.valid.key);
    const d = await daemon(`[[listen]]\naddress = "127.0.0.1:0"\ntls = "implicit"\n[tls]\ncertificate = "${pem}"\nkey = "${key}"\n`);
    const port = d.ports[0]!;
    const first = (await handshake(port)).fingerprint;
    assert.equal(first, fingerprint(certs.valid.cert));

    fs.writeFileSync(pem, certs.selfSigned.cert);
    fs.writeFileSync(key, certs.selfSigned.key);
    assert.equal((await handshake(port)).fingerprint, first, 'before the reload: the certificate loaded at start');

    d.child.kill('SIGHUP');
    await d.waitForLog(/reload -- configuration/);
    assert.equal((await handshake(port)).fingerprint, fingerprint(certs.selfSigned.cert), 'after the reload: the new file');
  });

  it('resumes a client\'s TLS session on reconnect (tickets), also after a reload, on implicit TLS and STARTTLS', async () => {
    const d = await daemon('[[listen]]\naddress = "127.0.0.1:0"\ntls = "implicit"\n[[listen]]\naddress = "127.0.0.1:0"\ntls = "starttls"\n', 2);
    const [implicit, starttls] = d.ports as [number, number];
    const full = await handshake(implicit);
    assert.equal(full.reused, false);
    const again = await handshake(implicit, full.session);
    assert.equal(again.reused, true, 'the second connection resumed the first one\'s session');

    // STARTTLS with openssl s_client, as a real client
    const sess = path.join(d.dir, 'starttls.session');
    assert.match(await sClient(starttls, ['-sess_out', sess], /^250 /m), /^New, TLS/m);
    assert.match(await sClient(starttls, ['-sess_in', sess], /^(New|Reused), /m), /^Reused, TLS/m);

    d.child.kill('SIGHUP');
    await d.waitForLog(/reload -- configuration/);
    assert.equal((await handshake(implicit, again.session)).reused, true, 'after a reload: the ticket keys are kept');
    assert.match(await sClient(starttls, ['-sess_in', sess], /^(New|Reused), /m), /^Reused, TLS/m);
  });
});

describe('outbound TLS files', () => {
  it('reads ca_file once per configuration, not for each new connection to the upstream', async () => {
    const up = await startUpstream({ tls: 'starttls', cert: 'valid' });
    cleanups.push(() => up.close());
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'smarthost-ca-'));
    cleanups.push(() => removeDir(dir));
    const ca = path.join(dir, 'ca.pem');
    fs.copyFileSync(up.caFile, ca);
    const d = await daemon([
      '[[listen]]', 'address = "127.0.0.1:0"',
      '[relay]', `url = "smtp://localhost:${up.port}"`, 'tls = "verify"', `ca_file = "${ca}"`,
      'reuse_messages = 1', // a new connection, and a new TLS handshake, for each message
      '',
    ].join('\n'));
    const send = async (subject: string) => {
      const c = await RawSmtp.connect(d.ports[0]!);
      await c.read();
      await c.cmd('EHLO client.test');
      const r = await sendRaw(c, 'a@example.org', ['b@example.net'], `Subject: ${subject}\r\n\r\nhi\r\n.\r\n`);
      c.close();
      assert.equal(r.code, 250);
    };
    await send('one');
    await up.waitForMessages(1);
    fs.rmSync(ca);
    await send('two');
    const [, second] = await up.waitForMessages(2);
    assert.equal(second!.secure, true);
    assert.equal(up.sessions.filter((s) => s.secure).length, 2, 'two connections, each verified with the CA read at start');
    await d.waitForLog(/status=sent[^]*status=sent/);
  });
});

/**
 * openssl s_client over STARTTLS: EHLO once the handshake is done, QUIT once its output matches
 * `ready`. (The server sends its TLS 1.3 tickets with its first write after the handshake.)
 */
function sClient(port: number, args: string[], ready: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', 'smtp', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    let sentEhlo = false;
    const timer = setTimeout(() => { p.kill(); reject(new Error(`openssl s_client: no ${ready} within 10s:\n${out}`)); }, 10_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!p.stdin.writable) return;
      if (ready.test(out)) p.stdin.end('QUIT\r\n');
      else if (/Verify return code/.test(out) && !sentEhlo) { sentEhlo = true; p.stdin.write('EHLO client.test\r\n'); }
    });
    p.on('exit', () => { clearTimeout(timer); resolve(out); });
  });
}

function fingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}
