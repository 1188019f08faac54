// Self-test of the test upstream, driven by nodemailer's SMTPConnection (the client
// smarthost itself delivers with): exact recording, TLS and AUTH, faults, certificate
// failures, and stop/restart on the same port.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';
import { waitFor } from '../helpers/wait.js';
import { testCerts } from './certs.js';
import { startUpstream, type Upstream } from './upstream.js';

type Client = InstanceType<typeof SMTPConnection>;
type Envelope = Parameters<Client['send']>[0];
type Info = Parameters<Parameters<Client['send']>[2]>[1];

const MESSAGE = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n.leading dot\r\nline two\r\n';

/** Connects (and logs in), or rejects with the client's error. */
function connect(up: Upstream, extra: Partial<SMTPConnectionOptions> = {}, auth?: { user: string; pass: string }): Promise<Client> {
  const client = new SMTPConnection({ host: up.host, port: up.port, name: 'client.test', connectionTimeout: 2000, ...extra });
  return new Promise((resolve, reject) => {
    client.on('error', reject); // later errors also reach the send callback
    client.connect(() => {
      if (!auth) return resolve(client);
      client.login(auth, (err) => {
        if (!err) return resolve(client);
        client.close();
        reject(err);
      });
    });
  });
}

function send(client: Client, envelope: Envelope, message = MESSAGE): Promise<Info> {
  return new Promise((resolve, reject) => client.send(envelope, message, (err, info) => (err ? reject(err) : resolve(info!))));
}

/** One message over a fresh connection; the client is closed afterwards. */
async function deliver(up: Upstream, envelope: Envelope, extra: Partial<SMTPConnectionOptions> = {}, auth?: { user: string; pass: string }): Promise<Info> {
  const client = await connect(up, extra, auth);
  try { return await send(client, envelope); } finally { client.close(); }
}

test('plain delivery is recorded exactly: envelope, DSN parameters, bytes, EHLO name', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  assert.match(up.url, /^smtp:\/\/127\.0\.0\.1:\d+$/);
  await deliver(up, {
    from: 'a@example.org', to: ['b@example.net', 'c@example.net'], size: MESSAGE.length,
    dsn: { ret: 'HDRS', envid: 'env-1', notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;b@example.net' },
  });
  const [m] = await up.waitForMessages(1);
  assert.ok(m);
  assert.equal(m.from, 'a@example.org');
  assert.deepEqual(m.to, ['b@example.net', 'c@example.net']);
  assert.equal(m.data.toString('latin1'), MESSAGE);
  assert.deepEqual(m.mailParams, { SIZE: String(MESSAGE.length), RET: 'HDRS', ENVID: 'env-1' });
  assert.deepEqual(m.rcptParams['b@example.net'], { NOTIFY: 'FAILURE,DELAY', ORCPT: 'rfc822;b@example.net' });
  assert.equal(m.clientHostname, 'client.test');
  assert.equal(m.secure, false);
  assert.equal(up.sessions[0]?.commands[0], 'EHLO client.test');
  assert.ok(!up.sessions[0]?.commands.some((c) => c.startsWith('STARTTLS')), 'STARTTLS is not offered with tls none');
});

test('implicit TLS verified with the test CA, AUTH PLAIN; a wrong password gets 535', async (t) => {
  const up = await startUpstream({ tls: 'implicit', auth: { users: { alice: 'secret' }, required: true } });
  t.after(() => up.close());
  assert.match(up.url, /^smtps:\/\//);
  const tls = { secure: true, tls: { ca: testCerts().ca, rejectUnauthorized: true } };
  await assert.rejects(connect(up, tls, { user: 'alice', pass: 'wrong' }), (err: Error & { responseCode?: number }) => err.responseCode === 535);
  await deliver(up, { from: 'a@example.org', to: ['b@example.net'] }, tls, { user: 'alice', pass: 'secret' });
  const [m] = await up.waitForMessages(1);
  assert.ok(m?.secure);
  assert.match(m.tlsVersion ?? '', /^TLSv1\.[23]$/);
  assert.equal(m.authUser, 'alice');
  assert.equal(m.authMethod, 'PLAIN');
  assert.deepEqual(up.sessions.flatMap((s) => s.authAttempts.map((a) => a.ok)), [false, true]);
});

test('AUTH is not offered before STARTTLS; MAIL needs it when required', async (t) => {
  const up = await startUpstream({ tls: 'starttls', auth: { users: { alice: 'secret' }, required: true } });
  t.after(() => up.close());
  const err = await deliver(up, { from: 'a@example.org', to: ['b@example.net'] }, { ignoreTLS: true }).catch((e: unknown) => e);
  assert.equal((err as { responseCode?: number }).responseCode, 530);
  await deliver(up, { from: 'a@example.org', to: ['b@example.net'] },
    { requireTLS: true, tls: { ca: testCerts().ca } }, { user: 'alice', pass: 'secret' });
  assert.equal((await up.waitForMessages(1))[0]?.secure, true);
});

test('a rcpt fault for one recipient rejects only that one, verbatim', async (t) => {
  const reply = '550 5.1.1 <bob@example.net>: Recipient address rejected';
  const up = await startUpstream({ faults: [{ stage: 'rcpt', rcpt: 'bob@example.net', action: 'reply', reply }] });
  t.after(() => up.close());
  const info = await deliver(up, { from: 'a@example.org', to: ['alice@example.net', 'bob@example.net'] });
  assert.deepEqual(info.rejected, ['bob@example.net']);
  assert.equal(info.rejectedErrors?.[0]?.response, reply);
  const [m] = await up.waitForMessages(1);
  assert.deepEqual(m?.to, ['alice@example.net']);
});

test('a connect fault with times: 1 refuses once, then the upstream greets', async (t) => {
  const up = await startUpstream({ faults: [{ stage: 'connect', action: 'reply', reply: '421 4.3.2 Service not available', times: 1 }] });
  t.after(() => up.close());
  await assert.rejects(connect(up), (err: Error & { responseCode?: number }) => err.responseCode === 421);
  await deliver(up, { from: 'a@example.org', to: ['b@example.net'] });
  assert.equal(up.messages.length, 1);
});

test("'dot' drop: the message arrives in full, the socket dies without a reply", async (t) => {
  const up = await startUpstream({ faults: [{ stage: 'dot', action: 'drop' }] });
  t.after(() => up.close());
  await assert.rejects(deliver(up, { from: 'a@example.org', to: ['b@example.net'] }));
  assert.equal(up.messages.length, 0);
  assert.equal(up.droppedAfterDot.length, 1);
  assert.equal(up.droppedAfterDot[0]?.data.toString('latin1'), MESSAGE);
});

test('a stalled session is destroyed by close()', async (t) => {
  const up = await startUpstream({ faults: [{ stage: 'ehlo', action: 'stall' }] });
  t.after(() => up.close());
  const pending = connect(up, { greetingTimeout: 5000, socketTimeout: 5000 });
  await waitFor(() => !!up.sessions[0]?.commands.length, 'EHLO at the upstream');
  await up.close();
  // cut by close(), not by the client's own 5 s timeout
  await assert.rejects(pending, (e: Error & { code?: string }) => e.code !== 'ETIMEDOUT' && !/time(d )?out/i.test(e.message));
});

test('bad certificates fail verification against the test CA', async (t) => {
  const cases = [
    { cert: 'expired', tls: 'starttls', error: /expired/ },
    { cert: 'wrongName', tls: 'implicit', error: /altnames|does not match/ },
    { cert: 'selfSigned', tls: 'implicit', error: /self[- ]signed/ },
  ] as const;
  for (const c of cases) {
    const up = await startUpstream({ tls: c.tls, cert: c.cert });
    t.after(() => up.close());
    const tls = { secure: c.tls === 'implicit', requireTLS: c.tls === 'starttls', tls: { ca: testCerts().ca, rejectUnauthorized: true } };
    await assert.rejects(connect(up, tls), (err: Error) => c.error.test(err.message), c.cert);
  }
});

test('stop() refuses connections, restart() listens on the same port again', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const port = up.port;
  await deliver(up, { from: 'a@example.org', to: ['b@example.net'] });
  await up.stop();
  await assert.rejects(new Promise((resolve, reject) => net.connect(port, '127.0.0.1', () => resolve(undefined)).once('error', reject)), /ECONNREFUSED/);
  await up.restart();
  assert.equal(up.port, port);
  await deliver(up, { from: 'a@example.org', to: ['c@example.net'] });
  assert.deepEqual((await up.waitForMessages(2)).map((m) => m.to[0]), ['b@example.net', 'c@example.net']);
  await assert.rejects(up.waitForMessages(3, 50), /wanted 3 message\(s\) within 50 ms, got 2/);
});
