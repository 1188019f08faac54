import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { MxRecord } from 'node:dns';
import { lookupMx, orderByPreference, resolverFor, type MxResolver, type MxResult } from './mx.js';
import { startDnsServer, type DnsServer } from '../../test/peers/dns-server.js';

let dns: DnsServer;
let resolver: MxResolver;

before(async () => {
  dns = await startDnsServer({
    'multi.test': {
      MX: [
        { preference: 20, exchange: 'mx-d.multi.test' },
        { preference: 10, exchange: 'mx-a.multi.test' },
        { preference: 10, exchange: 'mx-b.multi.test' },
        { preference: 10, exchange: 'mx-c.multi.test' },
        { preference: 5, exchange: 'MX-E.Multi.Test.' },
      ],
    },
    'a-only.test': { A: ['192.0.2.10'] },
    'aaaa-only.test': { AAAA: ['2001:db8::10'] },
    'null.test': { MX: [{ preference: 0, exchange: '.' }] },
    'null-and-real.test': { MX: [{ preference: 0, exchange: '.' }, { preference: 10, exchange: 'mx.null-and-real.test' }] },
    'empty.test': {},
    'broken.test': { SERVFAIL: true },
    'xn--bcher-kva.test': { MX: [{ preference: 10, exchange: 'mx.xn--bcher-kva.test' }] },
  });
  resolver = resolverFor([dns.address]);
});

after(() => dns.close());

const hostsOf = (r: MxResult) => {
  assert.equal(r.kind, 'hosts', JSON.stringify(r));
  return r.kind === 'hosts' ? r.hosts : [];
};

test('MX hosts are ordered by preference, names lower-cased without the trailing dot', async () => {
  const r = await lookupMx('multi.test', resolver, () => 0);
  assert.equal(r.kind === 'hosts' && r.implicit, false);
  const hosts = hostsOf(r);
  assert.deepEqual(hosts.map((h) => h.preference), [5, 10, 10, 10, 20]);
  assert.equal(hosts[0]!.host, 'mx-e.multi.test');
  assert.equal(hosts[4]!.host, 'mx-d.multi.test');
  assert.deepEqual(hosts.slice(1, 4).map((h) => h.host).sort(), ['mx-a.multi.test', 'mx-b.multi.test', 'mx-c.multi.test']);
});

test('equal preferences are shuffled by the injected rand, and only among themselves', async () => {
  const orders = new Set<string>();
  for (const rand of [() => 0, () => 0.999, () => 0.5, () => 0.3]) {
    const hosts = hostsOf(await lookupMx('multi.test', resolver, rand));
    assert.deepEqual(hosts.map((h) => h.preference), [5, 10, 10, 10, 20]);
    orders.add(hosts.slice(1, 4).map((h) => h.host).join(','));
  }
  assert.ok(orders.size >= 2, `expected different orders, got ${[...orders].join(' | ')}`);
});

test('orderByPreference with Math.random reaches every order of equal hosts', () => {
  const hosts = [{ host: 'a', preference: 10 }, { host: 'b', preference: 10 }, { host: 'c', preference: 10 }, { host: 'z', preference: 1 }];
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const order = orderByPreference(hosts);
    assert.equal(order[0]!.host, 'z');
    seen.add(order.map((h) => h.host).join(''));
  }
  assert.equal(seen.size, 6);
});

test('no MX: the domain itself is the host when it has an A or AAAA record (implicit MX)', async () => {
  for (const domain of ['a-only.test', 'aaaa-only.test']) {
    const before = dns.queries.length;
    const r = await lookupMx(domain, resolver);
    assert.deepEqual(r, { kind: 'hosts', hosts: [{ host: domain, preference: 0 }], implicit: true });
    const asked = dns.queries.slice(before).map((q) => `${q.name}/${q.type}`).sort();
    assert.deepEqual([...new Set(asked)], [`${domain}/A`, `${domain}/AAAA`, `${domain}/MX`]);
  }
});

test('null MX (RFC 7505) gives nullMx (its 5.1.10 is smtp/classify.ts lookupFailure)', async () => {
  const r = await lookupMx('null.test', resolver);
  assert.equal(r.kind, 'nullMx');
  if (r.kind !== 'nullMx') return;
  assert.match(r.detail, /null\.test does not accept mail \(nullMX\)/);
});

test('a null MX beside real hosts is ignored: the real hosts are used', async () => {
  assert.deepEqual(hostsOf(await lookupMx('null-and-real.test', resolver)), [{ host: 'mx.null-and-real.test', preference: 10 }]);
});

test('NXDOMAIN is notFound, in Postfix wording', async () => {
  const r = await lookupMx('nosuch.test', resolver);
  assert.deepEqual(r, { kind: 'notFound', detail: 'Host or domain name not found. Name service error for name=nosuch.test type=MX: Host not found' });
});

test('a name with neither MX nor A/AAAA is notFound', async () => {
  const r = await lookupMx('empty.test', resolver);
  assert.equal(r.kind, 'notFound');
  assert.match(r.kind === 'notFound' ? r.detail : '', /name=empty\.test type=AAAA: Host found but no data record/);
});

test('SERVFAIL is tempfail', async () => {
  const r = await lookupMx('broken.test', resolver);
  assert.deepEqual(r, { kind: 'tempfail', detail: 'Host or domain name not found. Name service error for name=broken.test type=MX: Host not found, try again' });
});

test('domains are normalised: case, trailing dot, and U-labels to A-labels', async () => {
  assert.equal(hostsOf(await lookupMx('MULTI.test.', resolver)).length, 5);
  assert.deepEqual(hostsOf(await lookupMx('bücher.test', resolver)), [{ host: 'mx.xn--bcher-kva.test', preference: 10 }]);
});

test('address literals need no DNS', async () => {
  const noDns: MxResolver = {
    resolveMx: () => assert.fail('no DNS for a literal'),
    resolve4: () => assert.fail('no DNS for a literal'),
    resolve6: () => assert.fail('no DNS for a literal'),
    resolveTxt: () => assert.fail('no DNS for a literal'),
  };
  assert.deepEqual(await lookupMx('[192.0.2.1]', noDns), { kind: 'hosts', hosts: [{ host: '192.0.2.1', preference: 0 }], implicit: true });
  assert.deepEqual(hostsOf(await lookupMx('[IPv6:2001:DB8::1]', noDns)), [{ host: '2001:db8::1', preference: 0 }]);
  for (const bad of ['[192.0.2]', '[2001:db8::1]', '[IPv6:192.0.2.1]', '[192.0.2.1', '[]']) {
    assert.equal((await lookupMx(bad, noDns)).kind, 'notFound', bad);
  }
});

/** A resolver whose answers are scripted per record type: records, or an error code to reject with. */
function fake(script: { MX?: MxRecord[] | string; A?: string[] | string; AAAA?: string[] | string }): MxResolver {
  const answer = <T>(v: T[] | string | undefined): Promise<T[]> => {
    if (v === undefined) return Promise.reject(Object.assign(new Error('ENODATA'), { code: 'ENODATA' }));
    if (typeof v === 'string') return Promise.reject(Object.assign(new Error(v), { code: v }));
    return Promise.resolve(v);
  };
  return { resolveMx: () => answer(script.MX), resolve4: () => answer(script.A), resolve6: () => answer(script.AAAA), resolveTxt: () => answer<string[]>(undefined) };
}

test('node DNS error codes are classified: only NXDOMAIN and NODATA are permanent', async () => {
  const table: Array<[string, MxResult['kind']]> = [
    ['ENOTFOUND', 'notFound'], ['EBADNAME', 'notFound'],
    ['ESERVFAIL', 'tempfail'], ['ETIMEOUT', 'tempfail'], ['ECONNREFUSED', 'tempfail'], ['EREFUSED', 'tempfail'],
    ['EFORMERR', 'tempfail'], ['EBADRESP', 'tempfail'], ['ENOTIMP', 'tempfail'], ['ECANCELLED', 'tempfail'], ['ESOMETHINGNEW', 'tempfail'],
  ];
  for (const [code, kind] of table) assert.equal((await lookupMx('x.test', fake({ MX: code }))).kind, kind, code);
  const thrown: MxResolver = { ...fake({}), resolveMx: () => Promise.reject(new Error('no code')) };
  assert.equal((await lookupMx('x.test', thrown)).kind, 'tempfail');
});

test('implicit MX: a temporary failure on either address family defers instead of bouncing', async () => {
  assert.equal((await lookupMx('x.test', fake({ A: 'ETIMEOUT' }))).kind, 'tempfail');
  assert.equal((await lookupMx('x.test', fake({ AAAA: 'ESERVFAIL' }))).kind, 'tempfail');
  assert.equal((await lookupMx('x.test', fake({ A: ['192.0.2.1'], AAAA: 'ESERVFAIL' }))).kind, 'hosts');
  assert.equal((await lookupMx('x.test', fake({ MX: [], A: ['192.0.2.1'] }))).kind, 'hosts');
  assert.equal((await lookupMx('x.test', fake({ A: 'ENOTFOUND', AAAA: 'ENOTFOUND' }))).kind, 'notFound');
  assert.equal((await lookupMx('x.test', fake({}))).kind, 'notFound');
});

test('a dead nameserver is a tempfail within seconds', { timeout: 20_000 }, async () => {
  // Nothing listens: the port answers ICMP "unreachable" and c-ares gives ECONNREFUSED.
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const closedPort = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  let t = Date.now();
  assert.equal((await lookupMx('x.test', resolverFor([`127.0.0.1:${closedPort}`]))).kind, 'tempfail');
  assert.ok(Date.now() - t < 3000);

  // Something listens but never answers: the timeout and tries bound the wait.
  const blackhole = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => blackhole.bind(0, '127.0.0.1', resolve));
  try {
    t = Date.now();
    assert.equal((await lookupMx('x.test', resolverFor([`127.0.0.1:${blackhole.address().port}`]))).kind, 'tempfail');
    assert.ok(Date.now() - t < 10_000, `took ${Date.now() - t} ms`);
  } finally {
    await new Promise<void>((resolve) => blackhole.close(() => resolve()));
  }
});
