// End to end: the HTTP API of a real daemon over loopback (issue 18). Tokens from the real
// `smarthost token add`, messages delivered to a real SMTP upstream, queue operations, the
// live log, idempotency across a restart, and a 202 that survives kill -9.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { launch, removeDir, runCli, startDaemon, tempDir, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { apiOf, type Api } from '../helpers/api.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

/** A daemon with [http] on a free port; `http` adds keys to [http], `extra` whole sections. */
async function daemonWithApi(extra: string, up?: Upstream, http = ''): Promise<{ d: RunningDaemon; api: Api }> {
  const relay = up ? `[relay]\nurl = "${up.url}"\ntls = "none"\n` : '';
  const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[http]\naddress = "127.0.0.1:0"\n${http}${relay}${extra}` });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  return { d, api: await apiOf(d) };
}

describe('tokens', () => {
  it('refuses a missing or unknown token with 401, lets a read-only token only GET, and throttles guessing with 429', async () => {
    const { d, api } = await daemonWithApi('');
    const rw = api.token('ops');
    const ro = api.token('viewer', true);
    const none = await api.call(undefined, 'GET', '/api/v1/queue');
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="smarthost"');
    assert.match(none.json.message, /Authorization: Bearer TOKEN/);
    assert.equal((await api.call('shk_not-a-token', 'GET', '/api/v1/queue')).status, 401);
    assert.equal((await api.call(ro, 'GET', '/api/v1/queue')).status, 200);
    const write = await api.call(ro, 'POST', '/api/v1/queue/flush');
    assert.equal(write.status, 403);
    assert.equal(write.json.error, 'read_only');
    assert.equal((await api.call(rw, 'POST', '/api/v1/queue/flush')).status, 200);
    assert.equal(d.cli(['token', 'del', 'ops']).status, 0);
    assert.equal((await api.call(rw, 'GET', '/api/v1/queue')).status, 401, 'a deleted token stops working at once');
    assert.match(d.logs(), /smarthost\/http\[\d+\]: token=ops client=\[127\.0\.0\.1\] POST \/api\/v1\/queue\/flush: 200/);
    assert.match(d.logs(), /API token refused for \/api\/v1\/queue: unknown token/);
    assert.doesNotMatch(d.cli(['token', 'list']).stdout, /ops/);
    assert.match(d.cli(['token', 'list']).stdout, /viewer\tread-only/);
  });

  it('answers 429 with Retry-After after limits of failed tokens, even to a right token, per client address', async () => {
    const { api } = await daemonWithApi('', undefined, 'auth_failures = "3/10m"\n');
    const good = api.token('ops');
    for (let i = 0; i < 3; i++) assert.equal((await api.call(`shk_guess${i}`, 'GET', '/api/v1/queue')).status, 401);
    const blocked = await api.call(good, 'GET', '/api/v1/queue');
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 500);
    assert.match(blocked.json.message, /too many requests with a wrong token/);
  });
});

describe('sending', () => {
  it('composes a JSON message, answers 202 with the queue id, and the upstream gets it with Bcc hidden and the attachment', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const { d, api } = await daemonWithApi('', up);
    const t = api.token('app');
    const r = await api.call(t, 'POST', '/api/v1/messages', {
      from: { name: 'Billing', address: 'billing@example.com' }, to: 'Bob <bob@example.net>', cc: ['carol@example.org'], bcc: 'audit@example.com',
      subject: 'Invoice 42', text: 'Your invoice is attached.', html: '<p>Your invoice is attached.</p>',
      attachments: [{ filename: 'invoice.txt', content: Buffer.from('total: 42 EUR\n').toString('base64'), content_type: 'text/plain' }],
      headers: { 'X-Campaign': 'december' },
    });
    assert.equal(r.status, 202, r.text);
    assert.match(r.json.id, /^[0-9A-F]{18}$/);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'billing@example.com');
    assert.deepEqual([...m!.to].sort(), ['audit@example.com', 'bob@example.net', 'carol@example.org']);
    const text = m!.data.toString('utf8');
    assert.match(text, /^Received: from api \(api \[127\.0\.0\.1\]\)/);
    assert.match(text, new RegExp(`with HTTP id ${r.json.id}`));
    assert.match(text, /^From: Billing <billing@example\.com>\r$/m);
    assert.match(text, /^X-Campaign: december\r$/m);
    assert.match(text, /^Message-ID: </mi);
    assert.doesNotMatch(text, /^Bcc:/mi);
    assert.match(text, /filename=invoice\.txt/);
    assert.match(text, new RegExp(Buffer.from('total: 42 EUR\n').toString('base64')));
    await d.waitForLog(new RegExp(`${r.json.id}: client=api\\[127\\.0\\.0\\.1\\], sasl_method=bearer, sasl_username=app`));
  });

  it('takes a raw message/rfc822 with its envelope in the query, adding Date and Message-ID like sendmail', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const { api } = await daemonWithApi('', up);
    const t = api.token('app');
    const r = await api.call(t, 'POST', '/api/v1/messages?from=cron@example.com&to=ops@example.net&to=dev@example.net', 'Subject: nightly\n\nall good\n');
    assert.equal(r.status, 202, r.text);
    const [m] = await up.waitForMessages(1);
    assert.equal(m!.from, 'cron@example.com');
    assert.deepEqual(m!.to, ['ops@example.net', 'dev@example.net']);
    assert.match(m!.data.toString(), /^Date: /m);
    assert.match(m!.data.toString(), /^Subject: nightly\r\n/m);
    assert.match(m!.data.toString(), /\r\n\r\nall good\r\n$/);
  });

  it('answers 400 with the field for bad input, 413 above message_size, 415 for other media types, and queues nothing', async () => {
    const { d, api } = await daemonWithApi('[queue]\ndefer_delivery = true\n[limits]\nmessage_size = "10KB"\nrecipients = 2\n[local]\ndomains = ["relay.test"]\nusers = ["alice"]\n');
    const t = api.token('app');
    const cases: Array<[unknown, number, RegExp, string?]> = [
      [{ to: 'bob@example.net' }, 400, /body\.from: must have required property 'from'/, 'body.from'],
      [{ from: 'a@example.com' }, 400, /body\.to: no recipient/, 'body.to'],
      [{ from: 'a@example.com', to: ['bob@example.net', 'not an address'] }, 400, /body\.to\[1\]: "not an address" is not an address/, 'body.to[1]'],
      [{ from: 'a@example.com', to: 'bob@example.net', subjekt: 'typo' }, 400, /must NOT have additional properties/],
      [{ from: 'a@example.com', to: 'bob@example.net', attachments: [{ filename: 'x', content: '***' }] }, 400, /attachments\[0\]\.content: is not base64/],
      [{ from: 'a@example.com', to: ['a@example.net', 'b@example.net', 'c@example.net'] }, 400, /3 recipients; at most 2 per message \(limits\.recipients\)/],
      [{ from: 'a@example.com', to: 'nobody@relay.test' }, 400, /<nobody@relay\.test>: User unknown in local recipient table/],
      [{ from: 'a@example.com', to: 'bob@example.net', text: 'x'.repeat(20_000) }, 413, /limit is 10000 \(limits\.message_size\)/],
    ];
    for (const [body, status, message, field] of cases) {
      const r = await api.call(t, 'POST', '/api/v1/messages', body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
      assert.match(r.json.message, message);
      if (field) assert.equal(r.json.field, field);
    }
    const raw = await api.call(t, 'POST', '/api/v1/messages?to=x@example.net', 'Subject: x\n\nx\n');
    assert.equal(raw.status, 400);
    assert.equal(raw.json.field, 'querystring.from');
    const plain = await fetch(`${api.base}/api/v1/messages`, { method: 'POST', headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'text/plain' }, body: 'hello' });
    assert.equal(plain.status, 415);
    const broken = await fetch(`${api.base}/api/v1/messages`, { method: 'POST', headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: '{"from":' });
    assert.equal(broken.status, 400);
    assert.deepEqual((await api.call(t, 'GET', '/api/v1/queue')).json, []);
    assert.equal(d.cli(['queue', '--json']).stdout.trim(), '[]');
  });

  it('honours Idempotency-Key: a retry gets the same id and one message is queued, also after a restart; another body gets 422', async () => {
    const { d, api } = await daemonWithApi('[queue]\ndefer_delivery = true\n');
    const t = api.token('app');
    const body = { from: 'a@example.com', to: 'b@example.net', subject: 'once', text: 'only once' };
    const first = await api.call(t, 'POST', '/api/v1/messages', body, { 'Idempotency-Key': 'order-7' });
    assert.equal(first.status, 202);
    const again = await api.call(t, 'POST', '/api/v1/messages', body, { 'Idempotency-Key': 'order-7' });
    assert.equal(again.status, 202);
    assert.equal(again.json.id, first.json.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await api.call(t, 'POST', '/api/v1/messages', { ...body, text: 'different' }, { 'Idempotency-Key': 'order-7' });
    assert.equal(other.status, 422);
    assert.equal(other.json.error, 'idempotency_key_reused');
    assert.equal((await d.stop()), 0);
    const d2 = await launch(d.dir, d.configFile);
    cleanups.push(async () => { await d2.stop(); });
    const api2 = await apiOf(d2);
    const afterRestart = await api2.call(t, 'POST', '/api/v1/messages', body, { 'Idempotency-Key': 'order-7' });
    assert.equal(afterRestart.json.id, first.json.id);
    assert.equal((await api2.call(t, 'GET', '/api/v1/queue')).json.length, 1);
  });

  it('a 202 survives kill -9: the message is in the queue after a restart', async () => {
    const { d, api } = await daemonWithApi('[queue]\ndefer_delivery = true\n');
    const t = api.token('app');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await api.call(t, 'POST', '/api/v1/messages', { from: 'a@example.com', to: `r${i}@example.net`, text: `message ${i}` });
      assert.equal(r.status, 202);
      ids.push(r.json.id);
    }
    await d.kill9();
    const d2 = await launch(d.dir, d.configFile);
    cleanups.push(async () => { await d2.stop(); });
    const listed = (await (await apiOf(d2)).call(t, 'GET', '/api/v1/queue')).json.map((m: { id: string }) => m.id);
    assert.deepEqual([...listed].sort(), [...ids].sort());
  });
});

describe('queue operations', () => {
  it('lists with filters, shows one message, gives its raw bytes, holds, releases, flushes and deletes, as the CLI does', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const { d, api } = await daemonWithApi('[queue]\ndefer_delivery = true\n', up);
    const t = api.token('ops');
    const send = async (from: string, to: string) => (await api.call(t, 'POST', '/api/v1/messages', { from, to, subject: `to ${to}`, text: 'hi' })).json.id as string;
    const a = await send('alice@example.com', 'bob@example.net');
    const b = await send('carol@example.com', 'dave@example.org');
    const list = await api.call(t, 'GET', '/api/v1/queue');
    assert.deepEqual(list.json, JSON.parse(d.cli(['queue', '--json']).stdout), 'the same shape as queue --json');
    assert.deepEqual((await api.call(t, 'GET', '/api/v1/queue?to=@example.org')).json.map((m: { id: string }) => m.id), [b]);
    assert.deepEqual((await api.call(t, 'GET', '/api/v1/queue?from=alice')).json.map((m: { id: string }) => m.id), [a]);
    const badState = await api.call(t, 'GET', '/api/v1/queue?state=frozen');
    assert.equal(badState.status, 400);
    assert.match(badState.json.message, /querystring\.state/);
    assert.equal((await api.call(t, 'GET', '/api/v1/queue?older_than=soon')).status, 400);

    const one = await api.call(t, 'GET', `/api/v1/queue/${a}`);
    assert.equal(one.json.client.authUser, 'ops');
    assert.match(one.json.headers, /^Subject: to bob@example\.net$/m);
    assert.match(one.json.preview, /hi/);
    const raw = await api.call(t, 'GET', `/api/v1/queue/${a}/raw`);
    assert.equal(raw.headers.get('content-type'), 'message/rfc822');
    assert.equal(raw.text, d.cli(['queue', 'show', a, '--raw']).stdout);
    assert.equal((await api.call(t, 'GET', '/api/v1/queue/0000000000000000FF')).status, 404);
    assert.equal((await api.call(t, 'GET', '/api/v1/queue/not-an-id')).status, 400);

    assert.equal((await api.call(t, 'POST', `/api/v1/queue/${a}/hold`)).status, 200);
    assert.deepEqual((await api.call(t, 'GET', '/api/v1/queue?state=held')).json.map((m: { id: string }) => m.id), [a]);
    assert.equal((await api.call(t, 'POST', `/api/v1/queue/${a}/release`)).status, 200);
    assert.deepEqual((await api.call(t, 'DELETE', `/api/v1/queue/${b}`)).json, { done: [b], missing: [] });
    assert.equal((await api.call(t, 'DELETE', `/api/v1/queue/${b}`)).status, 404);
    assert.equal((await api.call(t, 'POST', `/api/v1/queue/${a}/flush`)).status, 200);
    const [m] = await up.waitForMessages(1);
    assert.deepEqual(m!.to, ['bob@example.net']);
    await waitFor(async () => (await api.call(t, 'GET', '/api/v1/queue')).json.length === 0, 'the delivered message to leave the queue');
    assert.equal(up.messages.length, 1, 'the deleted message was never sent');
    assert.match(d.logs(), new RegExp(`token=ops client=\\[127\\.0\\.0\\.1\\] DELETE /api/v1/queue/${b}: 200`));
  });

  it('streams the log as server-sent events and counts deliveries per minute', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const { api } = await daemonWithApi('', up);
    const t = api.token('ops');
    const ac = new AbortController();
    const res = await fetch(`${api.base}/api/v1/events`, { headers: { Authorization: `Bearer ${t}` }, signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const sent = (await api.call(t, 'POST', '/api/v1/messages', { from: 'a@example.com', to: 'b@example.net', text: 'x' })).json.id;
    let seen = '';
    while (!/"event":"delivery"/.test(seen)) seen += (await reader.read()).value ?? '';
    ac.abort();
    assert.match(seen, new RegExp(`event: log\\ndata: \\{[^\\n]*"queue_id":"${sent}","event":"queued"`));
    assert.match(seen, /"status":"sent"/);
    const stats = await api.call(t, 'GET', '/api/v1/stats');
    assert.equal(stats.json.minutes.reduce((n: number, m: { delivered: number }) => n + m.delivered, 0), 1);
  });

  it('publishes an OpenAPI document and answers unknown endpoints with JSON 404', async () => {
    const { api } = await daemonWithApi('');
    const doc = await api.call(undefined, 'GET', '/api/v1/openapi.json');
    assert.equal(doc.status, 200);
    assert.equal(doc.json.openapi, '3.0.3');
    for (const p of ['/api/v1/queue', '/api/v1/queue/{id}', '/api/v1/queue/{id}/raw', '/api/v1/queue/{id}/hold', '/api/v1/messages', '/api/v1/events', '/api/v1/probe']) {
      assert.ok(doc.json.paths[p], `${p} in the OpenAPI document`);
    }
    const t = api.token('ops');
    const missing = await api.call(t, 'GET', '/api/v1/nothing');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error, 'not_found');
  });
});

describe('metrics', () => {
  it('counts API requests by route pattern, method and status', async () => {
    const { d, api } = await daemonWithApi('[metrics]\naddress = "127.0.0.1:0"\n');
    const t = api.token('ops');
    await api.call(t, 'GET', '/api/v1/queue');
    await api.call(t, 'GET', '/api/v1/queue/0000000000000000FF');
    await api.call(undefined, 'GET', '/api/v1/queue');
    const url = /metrics on (http:\S+)/.exec(await d.waitForLog(/metrics on http:\S+/))![1]!;
    const page = await (await fetch(url)).text();
    assert.match(page, /^smarthost_api_requests_total\{route="\/api\/v1\/queue",method="GET",status="200"\} 1$/m);
    assert.match(page, /^smarthost_api_requests_total\{route="\/api\/v1\/queue\/:id",method="GET",status="404"\} 1$/m);
    assert.match(page, /^smarthost_api_requests_total\{route="\/api\/v1\/queue",method="GET",status="401"\} 1$/m);
    assert.match(page, /^smarthost_webhook_outbox_events 0$/m);
  });
});

describe('[http] listener', () => {
  it('serves HTTPS with the [tls] certificate when tls = true', async () => {
    const { d } = await daemonWithApi('', undefined, 'tls = true\n');
    const url = /API and console on (https:\/\/\S+)\//.exec(await d.waitForLog(/API and console on https:\S+/))![1]!;
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`${url}/api/v1/openapi.json`, { rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
    assert.equal(status, 200);
  });

  it('refuses a non-loopback address without TLS, with the fix; allow_plaintext lets it be', () => {
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const file = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n[http]\naddress = "0.0.0.0:8025"\n');
    const bad = runCli(['check', '-c', file]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /http\.address = "0\.0\.0\.0:8025" is not a loopback address, and \[http\] has no TLS/);
    assert.match(bad.stderr, /set tls = true .*or allow_plaintext = true if a TLS proxy/);
    const proxied = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n[http]\naddress = "0.0.0.0:8025"\nallow_plaintext = true\nauth_fails = "1/1m"\n');
    const typo = runCli(['check', '-c', proxied]);
    assert.match(typo.stderr, /auth_fails/);
    assert.doesNotMatch(typo.stderr, /not a loopback address/);
  });
});
