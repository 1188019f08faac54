// The probe walk with its lookup faked at the interface (tests never ask real DNS): a name
// that does not exist stops the walk at DNS, and a refused address is passed over for the next.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { UpstreamConfig } from '../config/types.js';
import { plan, probe, type ProbeOptions } from './steps.js';

const servers: net.Server[] = [];
after(() => { for (const s of servers) s.close(); });

const upstream = (over: Partial<UpstreamConfig>): UpstreamConfig => ({
  url: 'smtp://mail.example.test:2525', scheme: 'smtp', host: 'mail.example.test', port: 2525, tls: 'none',
  mechanisms: ['PLAIN'], allowPlaintextAuth: false, minTlsVersion: 'TLSv1.2', concurrency: 1, timeoutMs: 1000, reuseMessages: 100, reuseTimeMs: 300_000, ...over,
});
const OPTS: ProbeOptions = { ehloName: 'relay.test', sender: 'postmaster@relay.test', originalSender: 'postmaster@relay.test', timeoutMs: 1000 };

/** A scripted plain SMTP peer: greets, answers EHLO, accepts MAIL, says bye. */
async function tinySmtp(): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.write('220 tiny.test ESMTP\r\n');
    s.on('data', (d) => {
      for (const line of d.toString().split('\r\n').filter(Boolean)) {
        const verb = line.slice(0, 4).toUpperCase();
        s.write(verb === 'EHLO' ? '250-tiny.test\r\n250 8BITMIME\r\n' : verb === 'QUIT' ? '221 2.0.0 Bye\r\n' : '250 2.0.0 Ok\r\n');
        if (verb === 'QUIT') s.end();
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('probe walk', () => {
  it('plans TLS steps by scheme and level', () => {
    assert.deepEqual(plan(upstream({}), false), ['dns', 'connect', 'banner', 'ehlo', 'auth', 'mail', 'quit']);
    assert.deepEqual(plan(upstream({ tls: 'verify' }), true),
      ['dns', 'connect', 'banner', 'ehlo', 'starttls', 'certificate', 'ehlo-tls', 'auth', 'mail', 'rcpt', 'data', 'quit']);
    assert.deepEqual(plan(upstream({ scheme: 'smtps', tls: 'encrypt' }), false).slice(0, 5), ['dns', 'connect', 'tls', 'certificate', 'banner']);
  });

  it('a name that does not exist fails at dns; the rest is skipped', async () => {
    const notFound = async () => { throw Object.assign(new Error('getaddrinfo ENOTFOUND mail.example.test'), { code: 'ENOTFOUND' }); };
    const r = await probe({ name: 'relay', section: '[relay]', upstream: upstream({}) }, OPTS, notFound);
    assert.equal(r.ok, false);
    assert.equal(r.steps[0]!.step, 'dns');
    assert.equal(r.steps[0]!.ok, false);
    assert.match(r.steps[0]!.diagnosis ?? '', /the name mail\.example\.test does not exist/);
    assert.ok(r.steps.slice(1).every((s) => s.skipped && !s.ok), JSON.stringify(r.steps));
  });

  it('passes over a refusing address to the next one, and walks a plain upstream to the end', async () => {
    const port = await tinySmtp();
    // two addresses for one name: nothing listens on 127.0.0.2, so the first is refused
    const lookup = async () => [{ address: '127.0.0.2' }, { address: '127.0.0.1' }];
    const r = await probe({ name: 'relay', section: '[relay]', upstream: upstream({ port }) }, OPTS, lookup);
    assert.deepEqual(r.steps.map((s) => `${s.step}:${s.ok}`), ['dns:true', 'connect:true', 'banner:true', 'ehlo:true', 'auth:true', 'mail:true', 'quit:true']);
    assert.match(r.steps[1]!.detail, new RegExp(`mail\\.example\\.test\\[127\\.0\\.0\\.1\\]:${port} in \\d+ ms`));
    assert.equal(r.steps[4]!.skipped, true);
    assert.equal(r.ok, true);
  });
});
