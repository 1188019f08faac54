import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isTextSourced, lookup, nextHopKeys, parseMap, parseMapRef, parseNextHop, splitCredentials } from './postfix-maps.js';
import { combinePerSite, perSiteLevel, policyLevel } from './tls-levels.js';
import { parseStunnelConf, tunnelFor } from './stunnel-conf.js';

describe('Postfix maps', () => {
  it('names the text source of a map, never the .db', () => {
    assert.deepEqual(parseMapRef('hash:/etc/postfix/sasl_passwd'), { type: 'hash', path: '/etc/postfix/sasl_passwd', text: 'hash:/etc/postfix/sasl_passwd' });
    assert.equal(parseMapRef('lmdb:/etc/postfix/x.db').path, '/etc/postfix/x');
    assert.equal(parseMapRef('/etc/aliases').type, 'hash');
    for (const t of ['hash', 'texthash', 'lmdb', 'btree']) assert.ok(isTextSourced(parseMapRef(`${t}:/x`)), t);
    for (const t of ['regexp', 'pcre', 'ldap', 'mysql', 'cidr']) assert.ok(!isTextSourced(parseMapRef(`${t}:/x`)), t);
  });

  it('reads key value lines with comments and continuation; the first of a duplicate key wins', () => {
    const entries = parseMap('# comment\n[smtp.mailgun.org]:587 postmaster@mg.example.com:s3cret\n\nSMTP.MyISP.com  myid:pw\n  :more\nsmtp.myisp.com other:pw\n');
    assert.deepEqual(entries.map((e) => [e.key, e.value, e.line]), [
      ['[smtp.mailgun.org]:587', 'postmaster@mg.example.com:s3cret', 2],
      ['smtp.myisp.com', 'myid:pw :more', 4],
    ]);
    assert.equal(lookup(entries, ['nope', '[SMTP.MAILGUN.ORG]:587'])?.key, '[smtp.mailgun.org]:587');
  });

  it('parses next hops: [host]:port without MX lookups, host:port with', () => {
    assert.deepEqual(parseNextHop('[127.0.0.1]:2525'), { host: '127.0.0.1', port: 2525, mx: false, written: '[127.0.0.1]:2525' });
    assert.deepEqual(parseNextHop('[smtp.example.com]'), { host: 'smtp.example.com', mx: false, written: '[smtp.example.com]' });
    assert.deepEqual(parseNextHop('smtp.myisp.com'), { host: 'smtp.myisp.com', mx: true, written: 'smtp.myisp.com' });
    assert.deepEqual(parseNextHop('mail.example.org:587'), { host: 'mail.example.org', port: 587, mx: true, written: 'mail.example.org:587' });
    assert.deepEqual(parseNextHop('[2001:db8::1]:25'), { host: '2001:db8::1', port: 25, mx: false, written: '[2001:db8::1]:25' });
    assert.equal(parseNextHop('smtp:[x]'), undefined);
  });

  it('looks credentials up by the next hop as written, then by host', () => {
    assert.deepEqual(nextHopKeys(parseNextHop('[127.0.0.1]:2525')!), ['[127.0.0.1]:2525', '[127.0.0.1]', '127.0.0.1']);
    assert.deepEqual(nextHopKeys(parseNextHop('smtp.myisp.com')!), ['smtp.myisp.com']);
  });

  it('splits user:password at the first colon', () => {
    assert.deepEqual(splitCredentials('a@b.example:pa:ss'), { username: 'a@b.example', password: 'pa:ss' });
    assert.equal(splitCredentials('nopassword'), undefined);
  });
});

describe('TLS levels', () => {
  it('maps smtp_tls_per_site words', () => {
    assert.deepEqual(['NONE', 'MAY', 'MUST', 'MUST_NOPEERMATCH', 'may'].map(perSiteLevel), ['none', 'may', 'verify', 'encrypt', 'may']);
    assert.equal(perSiteLevel('SOMETIMES'), undefined);
  });

  it('maps policy and security levels, with notes for those without counterpart', () => {
    assert.deepEqual(['none', 'may', 'encrypt', 'verify', 'secure'].map((w) => policyLevel(w)?.tls), ['none', 'may', 'encrypt', 'verify', 'verify']);
    assert.match(policyLevel('dane')!.note!, /DANE/);
    assert.equal(policyLevel('bogus'), undefined);
  });

  it('combines a per-site entry with the global level as Postfix does', () => {
    assert.equal(combinePerSite('encrypt', 'may'), 'encrypt');  // MUST_NOPEERMATCH over smtp_use_tls
    assert.equal(combinePerSite('none', 'verify'), 'none');     // NONE overrides smtp_enforce_tls
    assert.equal(combinePerSite('may', 'verify'), 'verify');    // MAY yields to smtp_enforce_tls
    assert.equal(combinePerSite('may', 'none'), 'may');
  });
});

describe('stunnel.conf', () => {
  it('finds the client service behind a local port, with global options', () => {
    const s = parseStunnelConf('; comment\nclient = yes\nforeground = no\n\n[req]\naccept = 2525\nconnect = smtp.verizon.net:465\n[other]\naccept = 127.0.0.1:1465\nconnect = smtp.isp.example:smtps\nverifyChain = yes\nCAfile = /etc/ssl/ca.pem\n');
    const t = tunnelFor(s, 2525)!;
    assert.equal(t.name, 'req');
    assert.deepEqual([t.client, t.acceptHost, t.connectHost, t.connectPort, t.verifies], [true, undefined, 'smtp.verizon.net', 465, false]);
    const o = tunnelFor(s, 1465)!;
    assert.deepEqual([o.connectHost, o.connectPort, o.verifies, o.caFile], ['smtp.isp.example', 465, true, '/etc/ssl/ca.pem']);
    assert.equal(tunnelFor(s, 25), undefined);
  });

  it('ignores server services (client = no)', () => {
    assert.equal(tunnelFor(parseStunnelConf('[s]\naccept = 465\nconnect = 25\n'), 465), undefined);
  });
});
