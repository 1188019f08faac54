// End to end: direct MX delivery (no route, no [relay]) against a test DNS
// server on loopback: preference order, next MX when one is down, implicit
// MX (A record only), null MX and unknown domains bounce, DNS trouble defers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { startDnsServer, type DnsServer } from '../peers/dns-server.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

describe('direct MX delivery', () => {
  let up: Upstream;
  let dns: DnsServer;
  let d: RunningDaemon;
  before(async () => {
    // [mx] port points every MX host at the upstream's port; mx1's address has nobody listening
    up = await startUpstream({ tls: 'starttls' });
    dns = await startDnsServer({
      'example.net': { MX: [{ preference: 20, exchange: 'mx2.example.net' }, { preference: 10, exchange: 'mx1.example.net' }] },
      'mx1.example.net': { A: ['127.0.0.9'] },             // preferred, but nothing listens there
      'mx2.example.net': { A: ['127.0.0.1'] },
      'a-only.example': { A: ['127.0.0.1'] },
      'nullmx.example': { MX: [{ preference: 0, exchange: '.' }] },
      'broken.example': { SERVFAIL: true },
      'client.test': { A: ['127.0.0.1'] },
    });
    d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[mx]\nnameservers = ["${dns.address}"]\nport = ${up.port}\ntimeout = "2s"\n[queue]\nretry_min = "1h"\nretry_max = "2h"\n` });
  });
  after(async () => { await d?.stop(); removeDir(d.dir); await up?.close(); await dns?.close(); });

  it('walks the MX hosts by preference and uses the next when one is down, with opportunistic TLS', async () => {
    const id = await submit(d.ports[0]!, 'alice@client.test', ['bob@example.net']);
    await d.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, relay=mx2\\.example\\.net\\[127\\.0\\.0\\.1\\]:${up.port}, .*status=sent`));
    const m = up.messages.find((x) => x.to.includes('bob@example.net'))!;
    assert.equal(m.secure, true, 'tls = "may" used the STARTTLS the MX offered');
    const asked = dns.queries.filter((q) => q.type === 'MX').map((q) => q.name);
    assert.ok(asked.includes('example.net'));
  });

  it('falls back to the A record when a domain has no MX', async () => {
    const id = await submit(d.ports[0]!, 'alice@client.test', ['carol@a-only.example']);
    await d.waitForLog(new RegExp(`${id}: to=<carol@a-only\\.example>, relay=a-only\\.example\\[127\\.0\\.0\\.1\\]:${up.port}, .*status=sent`));
  });

  it('bounces a null-MX domain (RFC 7505) and an unknown domain, and defers when DNS fails', async () => {
    const id = await submit(d.ports[0]!, 'alice@client.test', ['x@nullmx.example', 'y@nowhere.example', 'z@broken.example']);
    await d.waitForLog(new RegExp(`${id}: to=<x@nullmx\\.example>, relay=none, .*dsn=5\\.1\\.10, status=bounced \\(.*does not accept mail.*\\)`));
    await d.waitForLog(new RegExp(`${id}: to=<y@nowhere\\.example>, relay=none, .*dsn=5\\.1\\.2, status=bounced \\(Host or domain name not found.*\\)`));
    await d.waitForLog(new RegExp(`${id}: to=<z@broken\\.example>, relay=none, .*dsn=4\\.4\\.3, status=deferred`));
    // the non-delivery report goes to alice@client.test, whose domain resolves to the upstream
    await d.waitForLog(new RegExp(`${id}: sender non-delivery notification: \\w+`));
    const dsn = (await up.waitUntil((ms) => ms.some((x) => x.from === ''), 'the DSN to the sender')).find((x) => x.from === '');
    assert.ok(dsn, 'the DSN reached the sender');
    const text = dsn.data.toString('utf8');
    assert.match(text, /^Final-Recipient: rfc822; x@nullmx\.example\r$/m);
    assert.match(text, /^Final-Recipient: rfc822; y@nowhere\.example\r$/m);
    assert.doesNotMatch(text, /^Final-Recipient: rfc822; z@broken\.example/m);
  });
});
