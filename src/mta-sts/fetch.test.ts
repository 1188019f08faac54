// The TXT look-up and the policy fetch against the stub DNS and a real HTTPS
// policy host on 127.x.y.z:443. This process does not trust the test CA (Node
// reads NODE_EXTRA_CA_CERTS only at start), which is the case to test here: a
// policy host whose certificate does not verify gives no policy. The e2e test
// (test/e2e/mta-sts.test.ts) runs the daemon with the CA trusted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startDnsServer, type DnsServer } from '../../test/peers/dns-server.js';
import { policyText, startPolicyServer, type PolicyServer } from '../../test/peers/mta-sts-server.js';
import { resolverFor } from '../smtp/mx.js';
import { fetchStsPolicy, lookupStsRecord } from './fetch.js';

describe('MTA-STS discovery and fetch', () => {
  let dns: DnsServer;
  let web: PolicyServer;
  let silent: net.Server;
  before(async () => {
    web = await startPolicyServer(['a.test']);
    // accepts connections and never says a word: the fetch must give up by itself
    silent = net.createServer((s) => { sockets.push(s); });
    const silentIp = web.address.replace(/\.\d+$/, (last) => (last === '.250' ? '.251' : '.250'));
    await new Promise<void>((resolve) => silent.listen(443, silentIp, resolve));
    dns = await startDnsServer({
      '_mta-sts.a.test': { TXT: [['v=STSv1; id=abc1']] },
      '_mta-sts.two.test': { TXT: [['v=STSv1; id=1'], ['v=STSv1; id=2']] },
      '_mta-sts.broken.test': { SERVFAIL: true },
      'mta-sts.a.test': { A: [web.address] },
      'mta-sts.silent.test': { A: [silentIp] },
      'mta-sts.noaddr.test': {},
    });
    web.set('a.test', { body: policyText('enforce', ['mx.a.test']) });
  });
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await web.close();
    await dns.close();
  });

  it('reads the id, no record, two records, and DNS trouble apart', async () => {
    const r = resolverFor([dns.address]);
    assert.deepEqual(await lookupStsRecord('a.test', r), { kind: 'id', id: 'abc1' });
    assert.deepEqual(await lookupStsRecord('nothing.test', r), { kind: 'none', detail: 'no TXT record at _mta-sts.nothing.test' });
    assert.equal((await lookupStsRecord('two.test', r)).kind, 'none');
    assert.equal((await lookupStsRecord('broken.test', r)).kind, 'tempfail');
  });

  it('refuses a policy host whose certificate does not verify', async () => {
    const got = await fetchStsPolicy('a.test', resolverFor([dns.address]));
    assert.equal(got.outcome, 'unreachable');
    assert.match((got as { detail: string }).detail, /^https:\/\/mta-sts\.a\.test\/\.well-known\/mta-sts\.txt: .*(self[- ]signed|unable to verify|issuer)/i);
    assert.deepEqual(web.requests, [], 'no request was sent over the unverified connection');
  });

  it('gives up on a host with no address, and on one that never answers', async () => {
    const r = resolverFor([dns.address]);
    assert.deepEqual(await fetchStsPolicy('noaddr.test', r), { outcome: 'unreachable', detail: 'mta-sts.noaddr.test has no address' });
    assert.deepEqual(await fetchStsPolicy('silent.test', r, 300),
      { outcome: 'unreachable', detail: 'https://mta-sts.silent.test/.well-known/mta-sts.txt: no answer within 0.3 s' });
  });
});
