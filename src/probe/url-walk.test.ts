// A route's URLs in delivery order (url list, then fallback_urls), and --send-test sending
// one message only: through the first URL that gets that far. Lookup faked, peers on 127.0.0.1.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { UpstreamConfig, UpstreamUrl } from '../config/types.js';
import { hasSeveralUrls, probeRoute, routeUrls } from './url-walk.js';

const servers: net.Server[] = [];
after(() => { for (const s of servers) s.close(); });

const at = (port: number): UpstreamUrl => ({ url: `smtp://127.0.0.1:${port}`, scheme: 'smtp', host: '127.0.0.1', port });
const upstream = (over: Partial<UpstreamConfig>): UpstreamConfig => ({
  ...at(2525), tls: 'none', mechanisms: ['PLAIN'], allowPlaintextAuth: false, minTlsVersion: 'TLSv1.2', concurrency: 1, timeoutMs: 1000, reuseMessages: 100, reuseTimeMs: 300_000, ...over,
});

/** A plain SMTP peer that accepts everything; counts the messages it took. */
async function sink(): Promise<{ port: number; messages: () => number }> {
  let messages = 0;
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.write('220 sink.test ESMTP\r\n');
    let data = false;
    s.on('data', (d) => {
      for (const line of d.toString().split('\r\n').filter(Boolean)) {
        if (data) { if (line === '.') { data = false; messages++; s.write('250 2.0.0 queued\r\n'); } continue; }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'DATA') { data = true; s.write('354 go\r\n'); continue; }
        s.write(verb === 'EHLO' ? '250-sink.test\r\n250 8BITMIME\r\n' : verb === 'QUIT' ? '221 2.0.0 Bye\r\n' : '250 2.0.0 Ok\r\n');
        if (verb === 'QUIT') s.end();
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, messages: () => messages };
}

describe('probe of a route with several URLs', () => {
  it('lists the url list, then fallback_urls; a single url is one target', () => {
    const u = upstream({ urls: [at(1), at(2)], fallbackUrls: [at(3)] });
    assert.deepEqual(routeUrls(u).map((x) => `${x.role}:${x.url.port}`), ['primary:1', 'primary:2', 'fallback:3']);
    assert.equal(hasSeveralUrls(u), true);
    assert.equal(hasSeveralUrls(upstream({ urls: [at(2525)], fallbackUrls: [] })), false);
    assert.equal(hasSeveralUrls(upstream({})), false);
  });

  it('--send-test goes through the first passing URL only; ok needs a primary URL', async () => {
    const a = await sink();
    const b = await sink();
    const lookup = async () => [{ address: '127.0.0.1' }];
    const opts = { ehloName: 'relay.test', sender: 'p@relay.test', originalSender: 'p@relay.test', timeoutMs: 1000, sendTest: 'bob@example.net' };
    const r = await probeRoute({ name: 'corp', section: '[[route]] "corp"', upstream: upstream({ urls: [at(a.port)], fallbackUrls: [at(b.port)] }) }, opts, lookup);
    assert.equal(r.ok, true);
    assert.equal(r.first, `smtp://127.0.0.1:${a.port}`);
    assert.deepEqual([a.messages(), b.messages()], [1, 0]);
    assert.deepEqual(r.targets[1]!.steps.map((s) => s.step).includes('data'), false, 'the fallback walk stops at MAIL FROM');
  });
});
