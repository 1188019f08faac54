// End to end (issue 19): MTA-STS (RFC 8461) for direct MX delivery. The stub
// DNS serves MX, A and the _mta-sts TXT records and points every mta-sts.DOMAIN
// at a local HTTPS policy host on 127.x.y.z:443 (test/peers/mta-sts-server.ts).
// The daemon trusts the test CA through NODE_EXTRA_CA_CERTS, Node's own way to
// add a CA, so neither the policy fetch nor the MX's STARTTLS needs a test hook.
// Every MX host resolves to the one upstream, whose certificate names
// upstream.test: an MX called anything else fails verification by name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launch, removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { testCerts } from '../peers/certs.js';
import { startDnsServer, type DnsServer } from '../peers/dns-server.js';
import { policyText, startPolicyServer, type PolicyServer } from '../peers/mta-sts-server.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const DOMAINS = ['enforce.test', 'wrongmx.test', 'badcert.test', 'selfsigned.test', 'plain.test', 'testing.test', 'keep.test', 'change.test',
  'badversion.test', 'badmode.test', 'toolarge.test', 'redirect.test', 'html.test'];

/** An upstream on a random 127.x address, for a second MX host on the same [mx] port. */
async function startUpstreamAt(opts: UpstreamOptions & { port: number }): Promise<Upstream> {
  for (let tries = 0; ; tries++) {
    const host = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    try { return await startUpstream({ ...opts, host }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries > 20) throw e;
    }
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('MTA-STS for direct MX delivery', () => {
  let up: Upstream;
  let dns: DnsServer;
  let web: PolicyServer;
  let d: RunningDaemon;
  const env = () => ({ NODE_EXTRA_CA_CERTS: testCerts().caFile });

  /** A domain with one MX host (address 127.0.0.1), an _mta-sts record and, given text, a policy. */
  const publish = (domain: string, mx: string, id: string, policy?: string) => {
    dns.set(domain, { MX: [{ preference: 10, exchange: mx }] });
    dns.set(mx, { A: ['127.0.0.1'] });
    dns.set(`_mta-sts.${domain}`, { TXT: [['v=STSv1; id=', id]] });
    dns.set(`mta-sts.${domain}`, { A: [web.address] });
    if (policy !== undefined) web.set(domain, { body: policy });
  };
  const send = (to: string) => submit(d.ports[0]!, 'alice@client.test', [to]);
  const line = (id: string, to: string, status: string) => new RegExp(`${id}: to=<${esc(to)}>, relay=[^,]+, .*status=${status} \\(([^\\n]*)\\)`);
  const delivered = async (to: string) => {
    const id = await send(to);
    await d.waitForLog(line(id, to, 'sent'));
    return up.messages.find((m) => m.to.includes(to))!;
  };
  const deferred = async (to: string) => {
    const id = await send(to);
    const m = line(id, to, 'deferred').exec(await d.waitForLog(line(id, to, 'deferred')))!;
    assert.equal(up.messages.find((x) => x.to.includes(to)), undefined, `${to} must not be delivered`);
    return m[1]!;
  };
  /** The policy is looked up for each new connection: let the cached one close (5 s idle). */
  const idleClosed = () => waitFor(() => up.sessions.every((s) => s.closedAt !== undefined), 'the idle upstream connection to close', 100, 100);
  const toml = () => `[[listen]]\naddress = "127.0.0.1:0"\n[mx]\nnameservers = ["${dns.address}"]\nport = ${up.port}\ntimeout = "5s"\n` +
    `[queue]\nretry_min = "1h"\nretry_max = "2h"\n[metrics]\naddress = "127.0.0.1:0"\n`;

  before(async () => {
    up = await startUpstream({ tls: 'starttls' });
    dns = await startDnsServer({ 'client.test': { A: ['127.0.0.1'] } });
    web = await startPolicyServer(DOMAINS);
    d = await startDaemon({ toml: toml(), env: env() });
  });
  after(async () => { await d?.stop(); if (d) removeDir(d.dir); await up?.close(); await dns?.close(); await web?.close(); });

  it('enforce: delivers to an MX host the policy allows, over verified TLS, and route test shows the cached policy', async () => {
    publish('enforce.test', 'upstream.test', '2026a', policyText('enforce', ['upstream.test'], 86400));
    const m = await delivered('bob@enforce.test');
    assert.equal(m.secure, true);
    assert.equal(m.tlsVersion?.startsWith('TLSv1.'), true);
    await d.waitForLog(/smtp\[\d+\]: MTA-STS policy of enforce\.test \(mode enforce, id 2026a, mx upstream\.test\) fetched, max_age 86400s, cached until \d{4}-/);
    assert.deepEqual(web.requests.filter((r) => r.host === 'mta-sts.enforce.test'), [{ host: 'mta-sts.enforce.test', path: '/.well-known/mta-sts.txt' }]);
    const r = d.cli(['route', 'test', '--from', 'alice@client.test', '--to', 'bob@enforce.test', '--to', 'x@nopolicy.test']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /to <bob@enforce\.test>: mx enforce\.test because .*\n {6}MTA-STS: mode enforce, id 2026a, mx upstream\.test, cached until \d{4}-\d\d-\d\dT[\d:]+Z \(fetched /);
    assert.match(r.stdout, /to <x@nopolicy\.test>: mx nopolicy\.test because .*\n {6}MTA-STS: no policy cached for nopolicy\.test; _mta-sts\.nopolicy\.test is looked up at the next delivery/);
  });

  it('enforce: an MX host outside the policy is never tried; the mail defers naming MTA-STS, the domain, the patterns and the host', async () => {
    publish('wrongmx.test', 'mx.wrongmx.test', 'w1', policyText('enforce', ['upstream.test', '*.mail.wrongmx.test']));
    const sessionsBefore = up.sessions.length;
    const reason = await deferred('carol@wrongmx.test');
    assert.equal(reason, 'MTA-STS policy of wrongmx.test (mode enforce, id w1, mx upstream.test, *.mail.wrongmx.test) does not allow MX host mx.wrongmx.test; delivery deferred until the policy or the MX records change');
    assert.equal(up.sessions.length, sessionsBefore, 'no connection to the MX host');
  });

  it('enforce: an MX host whose certificate does not verify is refused, even with [mx] tls = "may"', async () => {
    publish('badcert.test', 'mx.badcert.test', 'b1', policyText('enforce', ['*.badcert.test']));
    const reason = await deferred('dave@badcert.test');
    assert.match(reason, /^MTA-STS policy of badcert\.test \(mode enforce, id b1, mx \*\.badcert\.test\) requires verified TLS with MX host mx\.badcert\.test: the certificate of mx\.badcert\.test\[127\.0\.0\.1\] is for other names \(DNS:localhost, DNS:upstream\.test, /);
  });

  it('enforce: an MX host whose certificate chain is not trusted (self-signed) is refused', async () => {
    const self = await startUpstreamAt({ tls: 'starttls', cert: 'selfSigned', port: up.port });
    try {
      publish('selfsigned.test', 'mx.selfsigned.test', 's1', policyText('enforce', ['*.selfsigned.test']));
      dns.set('mx.selfsigned.test', { A: [self.host] });
      const reason = await deferred('dan@selfsigned.test');
      assert.match(reason, /^MTA-STS policy of selfsigned\.test \(mode enforce, id s1, mx \*\.selfsigned\.test\) requires verified TLS with MX host mx\.selfsigned\.test: the certificate of mx\.selfsigned\.test\[127\.[\d.]+\] is self-signed/);
      assert.equal(self.messages.length, 0);
    } finally {
      await self.close();
    }
  });

  it('enforce: an MX host without STARTTLS gets nothing in plaintext', async () => {
    const plain = await startUpstreamAt({ tls: 'none', port: up.port });
    try {
      publish('plain.test', 'mx.plain.test', 'p1', policyText('enforce', ['mx.plain.test']));
      dns.set('mx.plain.test', { A: [plain.host] });
      const reason = await deferred('dina@plain.test');
      assert.match(reason, /^MTA-STS policy of plain\.test \(mode enforce, id p1, mx mx\.plain\.test\) requires verified TLS with MX host mx\.plain\.test: /);
      assert.equal(plain.messages.length, 0);
      assert.deepEqual(plain.sessions.flatMap((x) => x.commands).filter((c) => /^(MAIL|RCPT|DATA)/i.test(c)), [], 'no envelope in plaintext');
    } finally {
      await plain.close();
    }
  });

  it('testing: delivers as [mx] tls allows and logs what enforce would have refused (MX name and certificate)', async () => {
    publish('testing.test', 'mx.testing.test', 't1', policyText('testing', ['upstream.test']));
    const m = await delivered('erin@testing.test');
    assert.equal(m.secure, true, 'opportunistic TLS as [mx] tls = "may"');
    await d.waitForLog(/warning: MTA-STS policy of testing\.test \(mode testing, id t1, mx upstream\.test\) does not allow MX host mx\.testing\.test; enforce would refuse it, testing only reports it/);
    await d.waitForLog(/warning: MTA-STS policy of testing\.test \(mode testing, id t1, mx upstream\.test\): MX host mx\.testing\.test\[127\.0\.0\.1\]:\d+ has a certificate that does not verify \(ERR_TLS_CERT_ALTNAME_INVALID\); enforce would refuse it/);
  });

  const bad: Array<[string, (domain: string) => void, RegExp]> = [
    ['wrong version', (dom) => web.set(dom, { body: policyText('enforce', ['upstream.test'], 86400, 'STSv2') }), /is not a valid policy: version is "STSv2", not "STSv1"/],
    ['bad mode', (dom) => web.set(dom, { body: policyText('enforcing', ['upstream.test']) }), /is not a valid policy: mode is "enforcing", not enforce, testing or none/],
    ['too large', (dom) => web.set(dom, { body: policyText('enforce', ['upstream.test']) + `x-padding: ${'x'.repeat(70_000)}\r\n` }), /is larger than 64 KB/],
    ['redirect', (dom) => web.set(dom, { status: 301, body: '', location: 'https://elsewhere.test/mta-sts.txt' }), /answered 301 with a redirect to https:\/\/elsewhere\.test\/mta-sts\.txt, which RFC 8461 §3\.3 forbids following/],
    ['html', (dom) => web.set(dom, { type: 'text/html', body: policyText('enforce', ['upstream.test']) }), /is served as "text\/html", not text\/plain/],
  ];
  for (const [name, serve, why] of bad) {
    it(`a policy file with ${name} is ignored with a log line, and mail goes as if there were no policy`, async () => {
      const domain = `${name === 'wrong version' ? 'badversion' : name === 'bad mode' ? 'badmode' : name === 'too large' ? 'toolarge' : name}.test`;
      publish(domain, `mx.${domain}`, 'v1');
      serve(domain);
      await delivered(`frank@${domain}`); // the MX host would not match an enforce policy for upstream.test
      const logged = await d.waitForLog(new RegExp(`warning: MTA-STS policy of ${esc(domain)} \\(id v1\\) not used: https://mta-sts\\.${esc(domain)}/\\.well-known/mta-sts\\.txt .*`));
      assert.match(logged, why);
      assert.match(logged, /; mail to it is delivered as if it had no policy$/);
    });
  }

  it('a new id in the TXT record fetches the new policy at the next delivery', async () => {
    publish('change.test', 'upstream.test', 'c1', policyText('enforce', ['upstream.test']));
    await delivered('gina@change.test');
    await idleClosed();
    publish('change.test', 'mx.change.test', 'c2', policyText('testing', ['upstream.test']));
    await delivered('hank@change.test');
    await d.waitForLog(/MTA-STS policy of change\.test \(mode testing, id c2, mx upstream\.test\) fetched, .*, replaces id c1/);
    assert.equal(web.requests.filter((r) => r.host === 'mta-sts.change.test').length, 2);
  });

  it('counts fetches by outcome, refusals and testing-mode findings in the metrics', async () => {
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(await d.waitForLog(/metrics on http:\S+/))![1]!;
    const text = await (await fetch(url)).text();
    const value = (name: string) => Number(new RegExp(`^${esc(name)} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
    assert.equal(value('smarthost_mta_sts_policy_fetches_total{outcome="ok"}'), 8, text);
    assert.equal(value('smarthost_mta_sts_policy_fetches_total{outcome="invalid"}'), 4);
    assert.equal(value('smarthost_mta_sts_policy_fetches_total{outcome="http_error"}'), 1);
    assert.equal(value('smarthost_mta_sts_enforce_refused_total{why="mx"}'), 1);
    assert.equal(value('smarthost_mta_sts_enforce_refused_total{why="tls"}'), 3);
    assert.ok(value('smarthost_mta_sts_testing_failures_total{why="mx"}') >= 2);
    assert.ok(value('smarthost_mta_sts_testing_failures_total{why="tls"}') >= 2);
  });

  it('[mx] mta_sts = false: no policy is looked up or applied', async () => {
    const off = await startDaemon({ toml: toml().replace('timeout = "5s"\n', 'timeout = "5s"\nmta_sts = false\n'), env: env() });
    try {
      const txtBefore = dns.queries.filter((q) => q.name === '_mta-sts.wrongmx.test').length;
      const fetchesBefore = web.requests.length;
      const id = await submit(off.ports[0]!, 'alice@client.test', ['lara@wrongmx.test']);
      await off.waitForLog(line(id, 'lara@wrongmx.test', 'sent'));
      assert.equal(dns.queries.filter((q) => q.name === '_mta-sts.wrongmx.test').length, txtBefore);
      assert.equal(web.requests.length, fetchesBefore);
      assert.match(off.cli(['route', 'test', '--from', 'a@client.test', '--to', 'b@wrongmx.test']).stdout, /MTA-STS: not applied \(\[mx\] mta_sts = false\)/);
    } finally {
      await off.stop();
      removeDir(off.dir);
    }
  });

  it('an enforce policy outlives an outage of its policy host and a restart of the daemon', async () => {
    publish('keep.test', 'upstream.test', 'k1', policyText('enforce', ['upstream.test']));
    await delivered('ivan@keep.test');
    await idleClosed();
    await web.stop();
    // the domain now names another MX host and a new id, but the new policy cannot be fetched
    publish('keep.test', 'mx.keep.test', 'k2');
    let reason = await deferred('judy@keep.test');
    assert.match(reason, /^MTA-STS policy of keep\.test \(mode enforce, id k1, mx upstream\.test\) does not allow MX host mx\.keep\.test/);
    await d.waitForLog(/warning: MTA-STS policy of keep\.test \(id k2\) not used: https:\/\/mta-sts\.keep\.test\/\.well-known\/mta-sts\.txt: .*; the cached policy \(id k1, mode enforce\) stays in force until /);
    await d.stop();
    d = await launch(d.dir, d.configFile, { env: env() });
    reason = await deferred('kate@keep.test');
    assert.match(reason, /^MTA-STS policy of keep\.test \(mode enforce, id k1, mx upstream\.test\) does not allow MX host mx\.keep\.test/);
    const r = d.cli(['route', 'test', '--from', 'alice@client.test', '--to', 'kate@keep.test']);
    assert.match(r.stdout, /MTA-STS: mode enforce, id k1, mx upstream\.test, cached until /);
    await web.restart();
  });
});
