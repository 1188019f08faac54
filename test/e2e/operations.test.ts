// End to end: operating the daemon (issue 6). SIGHUP reloads the config under
// a live session without dropping it, and an invalid new config is refused
// with every problem logged; SIGTERM drains: idle sessions get 421, a
// transaction under way finishes, a delivery in flight completes, nothing is
// lost or sent twice across the restart.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { launch, removeDir, startDaemon, tempDir, writeConfig } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { submit } from '../helpers/submit.js';
import parsePrometheus from 'parse-prometheus-text-format';
import { testCerts } from '../peers/certs.js';
import { startUpstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const relayToml = (url: string, extra = '') =>
  `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${url}"\ntls = "none"\n[limits]\nmessage_size = "1MB"\n${extra}\n`;

async function ehloSize(port: number): Promise<string | undefined> {
  const c = await RawSmtp.connect(port);
  try {
    await c.read();
    return /SIZE (\d+)/.exec((await c.cmd('EHLO client.test')).text)?.[1];
  } finally { c.close(); }
}

describe('SIGHUP reload', () => {
  it('applies a new config without dropping a session in the middle of a transaction; refuses an invalid one', async () => {
    const up1 = await startUpstream({});
    const up2 = await startUpstream({});
    cleanups.push(() => up1.close(), () => up2.close());
    const d = await startDaemon({ toml: relayToml(up1.url) });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    const port = d.ports[0]!;
    assert.equal(await ehloSize(port), '1000000');

    const s = await RawSmtp.connect(port);
    await s.read();
    await s.cmd('EHLO client.test');
    assert.equal((await s.cmd('MAIL FROM:<a@client.test>')).code, 250);
    assert.equal((await s.cmd('RCPT TO:<b@example.net>')).code, 250);

    writeConfig(d.dir, relayToml(up2.url).replace('"1MB"', '"2MB"'));
    d.child.kill('SIGHUP');
    await d.waitForLog(/smarthost\/master\[\d+\]: reload -- configuration .*smarthost\.toml/);

    assert.equal((await s.cmd('DATA')).code, 354, 'the open session goes on after the reload');
    const done = await s.cmd('Subject: across a reload\r\n\r\nhi\r\n.');
    assert.equal(done.code, 250, done.text);
    await s.cmd('QUIT');
    s.close();
    const [m] = await up2.waitForMessages(1);
    assert.match(m!.data.toString('latin1'), /Subject: across a reload/);
    assert.equal(up1.messages.length, 0, 'deliveries after the reload use the new [relay]');
    assert.equal(await ehloSize(port), '2000000', 'new sessions get the new limits on the same port');

    // an invalid config: every problem logged, the running one kept
    fs.writeFileSync(d.configFile, fs.readFileSync(d.configFile, 'utf8') + '\n[queue]\nretry_min = "soon"\nbogus = 1\n');
    d.child.kill('SIGHUP');
    await d.waitForLog(/warning: SIGHUP: the new configuration has 2 problems; keeping the running one/);
    await d.waitForLog(/warning: .*smarthost\.toml:\d+: queue\.retry_min/);
    await d.waitForLog(/warning: .*smarthost\.toml:\d+: unknown key "queue\.bogus"/);
    await submit(port, 'a@client.test', ['c@example.net']);
    await up2.waitForMessages(2);
    assert.equal(await ehloSize(port), '2000000');
  });
});

describe('SIGHUP reload of certificates', () => {
  it('new STARTTLS sessions get the renewed certificate; a session already in TLS keeps working', async () => {
    const certs = testCerts();
    const d = await startDaemon({
      toml: `[[listen]]\naddress = "127.0.0.1:0"\ntls = "starttls"\n[tls]\ncertificate = "cert.pem"\nkey = "key.pem"\n`,
      dir: (() => { const dir = tempDir(); fs.copyFileSync(certs.expired.certFile, `${dir}/cert.pem`); fs.copyFileSync(certs.expired.keyFile, `${dir}/key.pem`); return dir; })(),
    });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    await d.waitForLog(/warning: the server certificate .*cert\.pem has expired/);
    const serial = async () => {
      const c = await RawSmtp.connect(d.ports[0]!);
      await c.read();
      await c.cmd('EHLO client.test');
      await c.starttls();
      return { c, serial: c.tlsSocket!.getPeerX509Certificate()!.serialNumber };
    };
    const before = await serial();
    fs.copyFileSync(certs.valid.certFile, `${d.dir}/cert.pem`);
    fs.copyFileSync(certs.valid.keyFile, `${d.dir}/key.pem`);
    d.child.kill('SIGHUP');
    await d.waitForLog(/reload -- configuration/);
    const after = await serial();
    assert.notEqual(after.serial, before.serial);
    assert.equal(after.serial, new crypto.X509Certificate(fs.readFileSync(certs.valid.certFile)).serialNumber);
    assert.equal((await before.c.cmd('EHLO client.test')).code, 250, 'the old TLS session is still served');
    before.c.close();
    after.c.close();
  });
});

describe('SIGTERM drain', () => {
  it('421 to idle sessions, lets a transaction and a delivery under way finish, loses nothing, sends nothing twice', async () => {
    const up = await startUpstream({ faults: [{ stage: 'dot', action: 'delay', ms: 1500, times: 1 }] });
    cleanups.push(() => up.close());
    const d = await startDaemon({ toml: relayToml(up.url) });
    cleanups.push(() => removeDir(d.dir));
    const port = d.ports[0]!;

    const inFlight = await submit(port, 'a@client.test', ['first@example.net']); // its delivery waits 1.5 s for the upstream's 250
    const idle = await RawSmtp.connect(port);
    await idle.read();
    await idle.cmd('EHLO idle.test');
    const mid = await RawSmtp.connect(port); // MAIL given before the stop: RCPT and DATA must still work
    await mid.read();
    await mid.cmd('EHLO mid.test');
    assert.equal((await mid.cmd('MAIL FROM:<a@client.test>')).code, 250);
    const busy = await RawSmtp.connect(port);
    await busy.read();
    await busy.cmd('EHLO busy.test');
    await busy.cmd('MAIL FROM:<a@client.test>');
    await busy.cmd('RCPT TO:<second@example.net>');
    assert.equal((await busy.cmd('DATA')).code, 354);
    busy.write('Subject: finishing during the drain\r\n\r\npart one\r\n');

    d.child.kill('SIGTERM');
    const bye = await idle.read();
    assert.equal(bye.code, 421);
    assert.match(bye.text, /^421 4\.3\.2 relay\.test Service shutting down, closing transmission channel/);
    await d.waitForLog(/daemon stopping: received SIGTERM/);
    await assert.rejects(new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(undefined); });
      c.on('error', reject);
    }), /ECONNREFUSED/, 'no new connections while draining');

    assert.equal((await mid.cmd('RCPT TO:<third@example.net>')).code, 250, 'a transaction under way goes on');
    assert.equal((await mid.cmd('DATA')).code, 354);
    const third = await mid.cmd('Subject: third\r\n\r\nx\r\n.');
    assert.equal(third.code, 250, third.text);
    const bye2 = await mid.read();
    assert.equal(bye2.code, 421, 'the session ends right after its transaction, without waiting for the client');
    const queued = await busy.cmd('part two\r\n.');
    assert.equal(queued.code, 250, queued.text);
    const second = /queued as (\w+)/.exec(queued.text)![1]!;
    const after = await busy.cmd('MAIL FROM:<a@client.test>');
    assert.equal(after.code, 421, 'no new transaction on the draining session');

    const code = d.child.exitCode ?? await new Promise<number | null>((resolve) => d.child.once('exit', resolve));
    assert.equal(code, 0, 'exits by itself once drained');
    assert.match(d.logs(), new RegExp(`${inFlight}: to=<first@example\\.net>, relay=.*status=sent`), 'the delivery under way finished');
    assert.match(d.logs(), new RegExp(`${inFlight}: removed`));
    assert.match(d.logs(), /daemon stopped/);
    assert.equal(up.messages.length, 1);

    const again = await launch(d.dir, d.configFile);
    cleanups.push(async () => { await again.stop(); });
    const msgs = await up.waitForMessages(3);
    await again.waitForLog(new RegExp(`${second}: to=<second@example\\.net>, .*status=sent`));
    assert.deepEqual(msgs.map((m) => m.to[0]).sort(), ['first@example.net', 'second@example.net', 'third@example.net'], 'each message exactly once');
    assert.match(msgs.find((m) => m.to[0] === 'second@example.net')!.data.toString('latin1'), /part one\r\npart two\r\n$/);
  });
});

describe('[metrics]', () => {
  it('serves Prometheus metrics that a text-format parser reads: queue, deliveries by route and status, connections, AUTH failures, latencies', async () => {
    const up = await startUpstream({ faults: [{ stage: 'rcpt', action: 'reply', rcpt: 'later@example.net', reply: '451 4.3.0 try later' }] });
    cleanups.push(() => up.close());
    const d = await startDaemon({
      toml: relayToml(up.url).replace('[[listen]]\naddress = "127.0.0.1:0"\n', '[[listen]]\naddress = "127.0.0.1:0"\nauth = "optional"\nallow_plaintext_auth = true\n') +
        '[queue]\nretry_min = "1h"\nretry_max = "2h"\n[metrics]\naddress = "127.0.0.1:0"\n',
    });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(await d.waitForLog(/metrics on http:\S+/))![1]!;
    const port = d.ports[0]!;
    await submit(port, 'a@client.test', ['now@example.net', 'later@example.net']);
    await up.waitForMessages(1);
    await d.waitForLog(/to=<later@example\.net>, .*status=deferred/);
    const c = await RawSmtp.connect(port);
    await c.read();
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from('\0nobody\0wrong').toString('base64')}`)).code, 535);
    await c.cmd('QUIT');
    c.close();

    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const families = new Map(parsePrometheus(await res.text()).map((f) => [f.name, f]));
    const value = (name: string, labels: Record<string, string> = {}) => Number(families.get(name)?.metrics
      .find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);
    assert.equal(value('smarthost_deliveries_total', { route: 'relay', status: 'sent' }), 1);
    assert.equal(value('smarthost_deliveries_total', { route: 'relay', status: 'deferred' }), 1);
    assert.equal(value('smarthost_queue_messages', { state: 'deferred' }), 1, 'the deferred message waits');
    assert.ok(value('smarthost_queue_oldest_message_age_seconds') >= 0);
    assert.equal(value('smarthost_connections_total', { listener: '127.0.0.1:0' }), 2);
    assert.equal(value('smarthost_auth_failures_total'), 1);
    assert.equal(value('smarthost_messages_received_total'), 1);
    assert.equal(families.get('smarthost_intake_duration_seconds')?.type, 'HISTOGRAM');
    assert.equal(families.get('smarthost_intake_duration_seconds')?.metrics[0]?.count, '1');
    assert.equal(families.get('smarthost_delivery_duration_seconds')?.metrics[0]?.count, '1', 'sent and bounced results are timed');
    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
  });
});
