import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { parseConfig } from '../config/load.js';
import { checkDomain, senderDomains, senderResolver } from './sender-domains.js';

const config = (toml: string) => {
  const r = parseConfig(toml, '/etc/smarthost/smarthost.toml');
  assert.ok(r.config, JSON.stringify(r.problems));
  return r.config;
};

describe('senderDomains: which domains the configuration sends from', () => {
  it('route senders through their route, [rewrite] targets and the host name through [relay], each with the include its preset needs', () => {
    const c = config(`hostname = "relay.corp.net"
[relay]
preset = "microsoft365"
username = "a@corp.net"
password_env = "P"
[rewrite]
senders = { "@relay.localdomain" = "alerts@corp.net", "root@box.lan" = "ops@corp.net" }
[[route]]
name = "news"
senders = ["@news.corp.net", ".shop.corp.net", "billing@pay.corp.net"]
preset = "amazon-ses"
region = "eu-west-1"
username = "AKIA"
password_env = "P"
`);
    const got = senderDomains(c).map((d) => [d.domain, d.why, [...d.includes.keys()]]);
    assert.deepEqual(got, [
      ['news.corp.net', 'route news senders', ['amazonses.com']],
      ['shop.corp.net', 'route news senders', ['amazonses.com']],
      ['pay.corp.net', 'route news senders', ['amazonses.com']],
      ['corp.net', '[rewrite] senders', ['spf.protection.outlook.com']],
      ['relay.corp.net', 'hostname (bare sender names)', ['spf.protection.outlook.com']],
    ]);
  });

  it('leaves out names without a dot and names reserved for tests and documentation', () => {
    const c = config(`hostname = "relay.test"
[rewrite]
senders = { "@a" = "x@example.com", "@b" = "y@mail.example.org", "@c" = "z@localhost" }
[[route]]
domains = ["x.net"]
senders = ["@host.invalid", "@printer.local"]
url = "smtp://127.0.0.1:25"
tls = "none"
`);
    assert.deepEqual(senderDomains(c), []);
  });

  it('without a preset a domain is still checked for SPF and DMARC, with no include to expect', () => {
    const c = config('hostname = "mail.corp.net"\n[relay]\nurl = "smtp://smtp.corp.net:587"\n');
    assert.deepEqual(senderDomains(c).map((d) => [d.domain, d.includes.size]), [['mail.corp.net', 0]]);
  });
});

describe('checkDomain when the DNS does not answer', () => {
  it('is a note ("could not check"), not a warning, and the summary says so', async () => {
    const silent = dgram.createSocket('udp4'); // takes the questions, never answers
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    try {
      const r = await checkDomain({ domain: 'corp.net', why: 'hostname (bare sender names)', includes: new Map() }, senderResolver([`127.0.0.1:${silent.address().port}`]));
      assert.deepEqual(r.findings.map((f) => [f.level, f.message]), [['note', 'could not check SPF and DMARC of sender domain corp.net: the DNS did not answer (ETIMEOUT)']]);
      assert.equal(r.summary, '  sender domain corp.net (hostname (bare sender names)): SPF not checked, DMARC not checked');
    } finally {
      silent.close();
    }
  });
});
