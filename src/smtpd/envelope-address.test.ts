import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReply } from '../mail/reply.js';
import { envelopeAddress } from './envelope-address.js';

const line = (s: string) => Buffer.from(s, 'latin1');
const check = (command: 'MAIL' | 'RCPT', raw: string, parsed: string, utf8 = false) => {
  const r = envelopeAddress(command, line(raw), utf8, parsed);
  return r.ok ? r.address : formatReply(r.reply);
};

describe('envelopeAddress', () => {
  it('gives the address as sent where smtp-server converted it (A-labels, IPv6 spelling)', () => {
    assert.equal(check('RCPT', 'RCPT TO:<Bob@xn--bcher-kva.example>', 'Bob@bücher.example'), 'Bob@xn--bcher-kva.example');
    assert.equal(check('RCPT', 'RCPT TO:<Bob@XN--BCHER-KVA.example>', 'Bob@XN--BCHER-KVA.example'), 'Bob@XN--BCHER-KVA.example');
    assert.equal(check('RCPT', 'RCPT TO:<a@[IPv6:2001:DB8:0::1]>', 'a@[IPv6:2001:db8::1]'), 'a@[IPv6:2001:DB8:0::1]');
    assert.equal(check('MAIL', 'MAIL FROM:<> SIZE=10', ''), '');
    assert.equal(check('RCPT', 'RCPT TO:<Postmaster>', 'Postmaster'), 'Postmaster');
  });

  it('refuses when smtp-server read another address from the same line', () => {
    assert.equal(check('RCPT', 'RCPT TO:<"bob@evil.example> x"@local.example>', '"bob@evil.example'), '501 5.1.3 Bad recipient address syntax');
    assert.equal(check('RCPT', 'RCPT TO:<bob@local.example>', 'bob@evil.example'), '501 5.1.3 Bad recipient address syntax');
    assert.equal(check('RCPT', 'RCPT TO:<Bob@example.net>', 'bob@example.net'), '501 5.1.3 Bad recipient address syntax');
    assert.equal(check('MAIL', 'MAIL FROM:<a@[192.0.2.1]>', 'a@[192.0.2.2]'), '501 5.1.7 Bad sender address syntax');
  });

  it('refuses 8-bit without SMTPUTF8 (553 5.6.7), and a line it was not given', () => {
    assert.equal(check('MAIL', 'MAIL FROM:<j\xf6rg@example.net>', 'j\ufffdrg@example.net'), '553 5.6.7 Must declare SMTPUTF8 to send unicode address');
    assert.equal(check('RCPT', 'RCPT TO:<j\xc3\xb6rg@example.net>', 'jörg@example.net', true), 'jörg@example.net');
    const r = envelopeAddress('RCPT', undefined, false, 'bob@example.net');
    assert.equal(r.ok ? r.address : formatReply(r.reply), '501 5.1.3 Bad recipient address syntax');
  });

  it('says whether the MAIL asked for SMTPUTF8', () => {
    const r = envelopeAddress('MAIL', line('MAIL FROM:<a@example.net> BODY=8BITMIME SMTPUTF8'), false, 'a@example.net');
    assert.ok(r.ok && r.smtputf8);
  });
});
