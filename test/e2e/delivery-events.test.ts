// End to end: the suppression list and delivery webhooks (issue 18). A recipient the upstream
// refuses as nonexistent is suppressed: the next message to it bounces at once without the
// upstream hearing of it, until `smarthost suppression del`. Webhook events reach a real
// HTTP receiver signed, are retried after a 500, and survive a kill -9 in the outbox.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { launch, removeDir, startDaemon, tempDir, writeConfig } from '../helpers/daemon.js';
import { apiOf } from '../helpers/api.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const GHOST = 'ghost@example.net';
const USER_UNKNOWN = `550 5.1.1 <${GHOST}>: Recipient address rejected: User unknown in virtual mailbox table`;

describe('suppression list', () => {
  it('suppresses a recipient refused as nonexistent: the next message bounces at once, until suppression del', async () => {
    const up = await startUpstream({ faults: [{ stage: 'rcpt', action: 'reply', reply: USER_UNKNOWN, rcpt: GHOST }] });
    cleanups.push(() => up.close());
    const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[http]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n` });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    const port = d.ports[0]!;
    const rcptsToGhost = () => up.sessions.flatMap((s) => s.commands).filter((c) => c.toLowerCase().includes(GHOST)).length;

    const first = await submit(port, 'app@example.com', [GHOST]);
    await d.waitForLog(new RegExp(`${first}: to=<${GHOST}>, dsn=5\\.1\\.1, added to the suppression list until \\d{4}-\\d\\d-\\d\\d`));
    assert.equal(rcptsToGhost(), 1);
    const listed = d.cli(['suppression', 'list']);
    assert.match(listed.stdout, new RegExp(`^${GHOST}\\t5\\.1\\.1\\tsince .*User unknown`, 'm'));

    const second = await submit(port, 'app@example.com', [GHOST]);
    await d.waitForLog(new RegExp(`${second}: to=<${GHOST}>, relay=none, .*status=bounced \\(recipient is on the suppression list since`));
    assert.equal(rcptsToGhost(), 1, 'the upstream never heard of the second message');
    // the sender's bounce says why
    await waitFor(() => up.messages.some((m) => m.from === '' && m.data.toString().includes(second)), 'the bounce of the second message');
    const dsn = up.messages.find((m) => m.from === '' && m.data.toString().includes(second))!.data.toString();
    assert.match(dsn.replace(/\r\n\s+/g, ' '), /suppression list/);

    const api = await apiOf(d);
    const t = api.token('ops');
    const viaApi = await api.call(t, 'GET', '/api/v1/suppressions');
    assert.deepEqual(viaApi.json.map((s: { address: string }) => s.address), [GHOST]);
    assert.equal(viaApi.json[0].queue_id, first);

    assert.equal(d.cli(['suppression', 'del', GHOST]).status, 0);
    assert.deepEqual((await api.call(t, 'GET', '/api/v1/suppressions')).json, []);
    up.setFaults([]);
    await submit(port, 'app@example.com', [GHOST]);
    await waitFor(() => up.messages.some((m) => m.to.includes(GHOST)), 'the message after suppression del to reach the upstream');
    assert.equal((await api.call(t, 'DELETE', `/api/v1/suppressions/${GHOST}`)).status, 404);
  });

  it('suppresses nothing with enabled = false, and refuses bad settings with the fix', async () => {
    const up = await startUpstream({ faults: [{ stage: 'rcpt', action: 'reply', reply: USER_UNKNOWN, rcpt: GHOST }] });
    cleanups.push(() => up.close());
    const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n[suppression]\nenabled = false\n` });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    await submit(d.ports[0]!, 'app@example.com', [GHOST]);
    await submit(d.ports[0]!, 'app@example.com', [GHOST]);
    await waitFor(() => up.sessions.flatMap((s) => s.commands).filter((c) => c.includes(GHOST)).length === 2, 'both messages to reach the upstream');
    assert.doesNotMatch(d.logs(), /suppression list/);
    fs.writeFileSync(d.configFile, fs.readFileSync(d.configFile, 'utf8').replace('enabled = false', 'codes = ["4.2.2"]\nexpire = "0"'));
    const bad = d.cli(['check']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /"4\.2\.2" in suppression\.codes is not a permanent enhanced status code/);
    assert.match(bad.stderr, /suppression\.expire cannot be 0/);
    fs.writeFileSync(d.configFile, fs.readFileSync(d.configFile, 'utf8').replace(/codes = .*\nexpire = "0"/, '') + '[[webhook]]\nurl = "http://hooks.example.com/x"\nsecret_file = "nothere.secret"\nevents = ["sent"]\n');
    const hook = d.cli(['check']);
    assert.equal(hook.status, 1);
    assert.match(hook.stderr, /webhook\[0\]\.url = "http:\/\/hooks\.example\.com\/x" sends delivery events \(addresses\) in clear over the network/);
    assert.match(hook.stderr, /"sent" in webhook\[0\]\.events is not an event/);
  });
});

interface Received { headers: http.IncomingHttpHeaders; body: string }

async function receiver(statuses: number[] = []): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      if (status === 200) got.push({ headers: req.headers, body });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function verify(secret: string, r: Received): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['x-smarthost-signature']));
  if (!m) return false;
  const want = crypto.createHmac('sha256', secret).update(`${m[1]}.${r.body}`).digest();
  return crypto.timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
}

describe('webhooks', () => {
  it('posts signed delivered and bounced events, retrying after a 500', async () => {
    const up = await startUpstream({ faults: [{ stage: 'rcpt', action: 'reply', reply: USER_UNKNOWN, rcpt: GHOST }] });
    cleanups.push(() => up.close());
    const hook = await receiver([500]);
    cleanups.push(() => hook.close());
    const secret = crypto.randomBytes(24).toString('hex');
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'hook.secret'), secret + '\n', { mode: 0o600 });
    const d2 = await launch(dir, writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n[[webhook]]\nurl = "${hook.url}"\nevents = ["delivered", "bounced", "suppressed"]\nsecret_file = "hook.secret"\n`));
    cleanups.push(async () => { await d2.stop(); removeDir(dir); });
    const id = await submit(d2.ports[0]!, 'app@example.com', ['bob@example.net', GHOST]);
    await waitFor(() => hook.got.length >= 2, () => `two events (got ${hook.got.map((g) => g.body).join('\n')}; log:\n${d2.logs()})`, 600, 25);
    assert.ok(hook.got.every((r) => verify(secret, r)), 'every signature verifies');
    const events = hook.got.map((r) => JSON.parse(r.body));
    const delivered = events.find((e) => e.to === 'bob@example.net');
    assert.equal(delivered.event, 'delivered');
    assert.equal(delivered.id, id);
    assert.equal(delivered.from, 'app@example.com');
    assert.equal(delivered.status, 'sent');
    assert.equal(delivered.attempt, 1);
    assert.match(delivered.message_id, /^<.*@client\.test>$/);
    assert.match(delivered.relay, /^127\.0\.0\.1\[127\.0\.0\.1\]:\d+$/);
    const bounced = events.find((e) => e.to === GHOST);
    assert.equal(bounced.event, 'bounced');
    assert.equal(bounced.dsn, '5.1.1');
    assert.match(bounced.reply, /User unknown/);
    assert.match(d2.logs(), /webhook http:\/\/127\.0\.0\.1:\d+\/hook: HTTP 500; retrying with backoff/);
  });

  it('keeps events in the outbox across a kill -9 and posts them after the restart', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const hook = await receiver();
    await hook.close(); // the receiver is down while mail is delivered
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'hook.secret'), 'sekrit\n', { mode: 0o600 });
    const configFile = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n[[webhook]]\nurl = "${hook.url}"\nsecret_file = "hook.secret"\ntimeout = "2s"\n`);
    cleanups.push(() => removeDir(dir));
    const d2 = await launch(dir, configFile);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(d2.ports[0]!, 'app@example.com', [`r${i}@example.net`]));
    await up.waitForMessages(5);
    await d2.waitForLog(/webhook .*retrying with backoff/);
    await d2.kill9();
    // the receiver comes back on the same port
    const port = Number(new URL(hook.url).port);
    const got: string[] = [];
    const server = http.createServer((req, res) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => { got.push(b); res.end(); }); });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const d3 = await launch(dir, configFile);
    cleanups.push(async () => { await d3.stop(); });
    await waitFor(() => got.length >= 5, () => `5 events after the restart, got ${got.length}`, 600, 25);
    assert.deepEqual(got.map((b) => JSON.parse(b).id).sort(), [...ids].sort());
    assert.ok(got.every((b) => JSON.parse(b).event === 'delivered'));
  });
});
