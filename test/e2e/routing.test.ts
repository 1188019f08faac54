// End to end (issue 5): an upstream's URL list fails over within one attempt
// (closed port, 421 greeting, expired certificate), fallback_urls take what
// the primary deferred, `rate` spaces deliveries out at the upstream, a "too
// many connections" reply defers and then delivers, and `reuse_messages`
// closes a cached connection. The log names the host that answered.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function upstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const up = await startUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}

/** A daemon whose [relay] has these lines (url, tls, …); retries come after 1-2 s. */
async function daemon(relay: string, queue = '[queue]\nretry_min = "1s"\nretry_max = "2s"'): Promise<RunningDaemon> {
  const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\n${relay}\n${queue}\n` });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  return d;
}

const sentVia = (id: string, up: Upstream) =>
  new RegExp(`smarthost/smtp\\[\\d+\\]: ${id}: to=<bob@example\\.net>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${up.port}, .*status=sent \\(250 `);

/** Submits one message, expects it at `good` and a log line that names `good` as the relay. */
async function deliversVia(d: RunningDaemon, good: Upstream): Promise<string> {
  const id = await submit(d.ports[0]!, 'alice@client.test', ['bob@example.net']);
  const [m] = await good.waitForMessages(1, 10_000);
  assert.match(m!.data.toString('latin1'), new RegExp(`with ESMTP id ${id}`));
  await d.waitForLog(sentVia(id, good));
  await d.waitForLog(new RegExp(`${id}: removed`));
  return id;
}

describe('failover between the URLs of one upstream', () => {
  it('skips a primary whose port is closed, in the same attempt', async () => {
    const down = await upstream();
    await down.stop(); // nothing listens on its port any more
    const good = await upstream();
    const d = await daemon(`url = ["${down.url}", "${good.url}"]\ntls = "none"`);
    const id = await deliversVia(d, good);
    assert.doesNotMatch(d.logs(), new RegExp(`${id}: .*status=deferred`), 'no deferral: the second URL is tried in the same attempt');
  });

  it('skips a primary that refuses at the greeting with 421', async () => {
    const refusing = await upstream({ faults: [{ stage: 'connect', action: 'reply', reply: '421 upstream.test Service not available, closing channel' }] });
    const good = await upstream();
    const d = await daemon(`url = ["${refusing.url}", "${good.url}"]\ntls = "none"`);
    const id = await deliversVia(d, good);
    assert.equal(refusing.sessions.length, 1, 'the refusing host was tried first');
    assert.equal(refusing.messages.length, 0);
    assert.doesNotMatch(d.logs(), new RegExp(`${id}: .*status=deferred`));
  });

  it('skips a primary whose certificate fails tls = "verify" (expired); the second URL uses the same TLS settings', async () => {
    const expired = await upstream({ tls: 'starttls', cert: 'expired' });
    const good = await upstream({ tls: 'starttls' });
    const d = await daemon(`url = ["${expired.url}", "${good.url}"]\ntls = "verify"\nca_file = "${good.caFile}"`);
    await deliversVia(d, good);
    const [m] = good.messages;
    assert.equal(m!.secure, true, 'the second URL was verified and encrypted too');
    assert.equal(expired.messages.length, 0);
    assert.ok(expired.sessions.length >= 1, 'the expired host was tried first');
  });

  it('uses fallback_urls for mail the primary deferred with 451 at MAIL FROM', async () => {
    const primary = await upstream({ faults: [{ stage: 'mail', action: 'reply', reply: '451 4.3.0 Temporary local problem' }] });
    const fallback = await upstream();
    const d = await daemon(`url = "${primary.url}"\nfallback_urls = ["${fallback.url}"]\ntls = "none"`);
    const id = await deliversVia(d, fallback);
    assert.ok(primary.sessions.some((s) => s.commands.some((c) => /^MAIL FROM:/i.test(c))), 'the primary was asked first');
    assert.equal(primary.messages.length, 0);
    assert.doesNotMatch(d.logs(), new RegExp(`${id}: .*status=(deferred|bounced)`));
  });

  it('`smarthost route test` shows the URL list and fallbacks of the route that mail takes', async () => {
    const a = await upstream();
    const b = await upstream();
    const c = await upstream();
    const d = await daemon(`url = ["${a.url}", "${b.url}"]\nfallback_urls = ["${c.url}"]\ntls = "none"`);
    const r = d.cli(['route', 'test', '--from', 'alice@client.test', '--to', 'bob@example.net', '--to', 'root@localhost']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`to <bob@example\\.net>: relay -> ${a.url}, ${b.url} \\(fallback ${c.url}\\) because`));
    assert.match(r.stdout, /to <root@localhost>: local \(maildir .*\) because localhost is in \[local\] domains/);
  });
});

describe('per-upstream limits', () => {
  it('rate = "5/2s": 12 messages all arrive, never more than 5 in any 2 s at the upstream', async () => {
    const up = await upstream();
    const d = await daemon(`url = "${up.url}"\ntls = "none"\nrate = "5/2s"`);
    const started = Date.now();
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(d.ports[0]!, 'alice@client.test', [`r${i}@example.net`])));
    const msgs = await up.waitForMessages(12, 20_000);
    const elapsed = Date.now() - started;
    const times = msgs.map((m) => m.receivedAt).sort((a, b) => a - b);
    for (let i = 0; i + 5 < times.length; i++) {
      assert.ok(times[i + 5]! - times[i]! >= 2000, `6 messages within 2 s: ${times.map((t) => t - times[0]!).join(', ')} ms`);
    }
    assert.ok(elapsed >= 4000, `12 messages at 5 per 2 s take at least 4 s, took ${elapsed} ms`);
    for (const id of ids) await d.waitForLog(new RegExp(`${id}: removed`));
    assert.doesNotMatch(d.logs(), /status=(deferred|bounced)/, 'mail over the rate waits; it is never deferred or bounced');
  });

  it('"421 4.7.0 Too many connections" at connect: the mail is deferred with that reply, then delivered, never bounced', async () => {
    const up = await upstream({ faults: [{ stage: 'connect', action: 'reply', reply: '421 4.7.0 Too many connections', times: 1 }] });
    const d = await daemon(`url = "${up.url}"\ntls = "none"`);
    const id = await submit(d.ports[0]!, 'alice@client.test', ['bob@example.net']);
    await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*status=deferred \\(.*421 4\\.7\\.0 Too many connections; the server asks for fewer connections; smarthost slows down`));
    await up.waitForMessages(1, 15_000);
    await d.waitForLog(sentVia(id, up));
    await d.waitForLog(new RegExp(`${id}: removed`));
    assert.doesNotMatch(d.logs(), /status=bounced|non-delivery notification/);
    assert.equal(up.messages.length, 1);
  });

  it('reuse_messages = 2: a cached connection carries two messages, then is closed with QUIT', async () => {
    const up = await upstream();
    const d = await daemon(`url = "${up.url}"\ntls = "none"\nconcurrency = 1\nreuse_messages = 2`);
    const ids = await Promise.all([1, 2, 3, 4, 5].map((i) => submit(d.ports[0]!, 'alice@client.test', [`r${i}@example.net`])));
    await up.waitForMessages(5);
    for (const id of ids) await d.waitForLog(new RegExp(`${id}: removed`));
    const perSession = up.sessions.map((s) => s.commands.filter((c) => /^DATA$/i.test(c)).length);
    assert.deepEqual(perSession, [2, 2, 1], `sessions: ${up.sessions.map((s) => s.commands.join(' ')).join(' | ')}`);
    for (const s of up.sessions.slice(0, 2)) {
      await waitFor(() => s.commands.at(-1) === 'QUIT', () => `a spent session ends with QUIT: ${s.commands.join(' ')}`);
    }
  });
});
