import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import type { Cidr, ListenAuth } from '../config/types.js';
import { formatReply } from '../mail/reply.js';
import { checkMailFrom, checkRcptTo, checkSenderLogin, isTrusted, type SessionFacts } from './relay-policy.js';

function cidr(text: string): Cidr {
  return { text, range: ipaddr.parseCIDR(text) };
}

describe('isTrusted', () => {
  const nets = [cidr('127.0.0.0/8'), cidr('192.168.1.0/24'), cidr('2001:db8::/32'), cidr('::1/128')];

  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['192.168.1.77', true],
    ['192.168.2.1', false],
    ['10.0.0.1', false],
    ['2001:db8::1', true],
    ['2001:db8:ffff::42', true],
    ['2001:db9::1', false],
    ['::1', true],
    ['::2', false],
    ['::ffff:127.0.0.1', true],    // IPv4-mapped, as a dual-stack socket reports it
    ['::ffff:192.168.1.5', true],
    ['::ffff:10.1.2.3', false],
    ['not-an-ip', false],
    ['', false],
  ];
  for (const [ip, expected] of cases) {
    it(`${JSON.stringify(ip)} -> ${expected}`, () => {
      assert.equal(isTrusted(ip, nets), expected);
    });
  }

  it('trusts nobody with no networks', () => {
    assert.equal(isTrusted('127.0.0.1', []), false);
  });

  it('does not match an IPv4 address against an IPv6-only list', () => {
    assert.equal(isTrusted('192.168.1.77', [cidr('2001:db8::/32')]), false);
    assert.equal(isTrusted('2001:db8::1', [cidr('0.0.0.0/0')]), false);
  });
});

function facts(auth: ListenAuth, trusted: boolean, authenticated: boolean): SessionFacts {
  return { listener: { auth }, trusted, authenticated };
}

describe('checkRcptTo', () => {
  const local = ['example.com', '.lists.example.org'];
  const DENIED = '554 5.7.1 <x@example.net>: Relay access denied';

  const table: Array<[string, SessionFacts, string, string | undefined]> = [
    // description, session, recipient, expected reply (undefined = accepted)
    ['local domain, untrusted, unauthenticated', facts('none', false, false), 'bob@example.com', undefined],
    ['local domain, case-insensitive', facts('none', false, false), 'bob@EXAMPLE.COM', undefined],
    ['local subdomain via ".domain" entry', facts('optional', false, false), 'x@team.lists.example.org', undefined],
    ['local domain on auth=required listener', facts('required', false, false), 'bob@example.com', undefined],
    ['bare local name', facts('none', false, false), 'postmaster', undefined],
    ['remote from trusted', facts('none', true, false), 'x@example.net', undefined],
    ['remote from trusted, auth=optional', facts('optional', true, false), 'x@example.net', undefined],
    ['remote from authenticated', facts('optional', false, true), 'x@example.net', undefined],
    ['remote from authenticated, auth=required', facts('required', false, true), 'x@example.net', undefined],
    ['remote from untrusted', facts('none', false, false), 'x@example.net', DENIED],
    ['remote from untrusted, auth=optional', facts('optional', false, false), 'x@example.net', DENIED],
    ['remote from trusted but unauthenticated on auth=required', facts('required', true, false), 'x@example.net', DENIED],
    ['parent of a ".domain" entry is not local', facts('none', false, false), 'x@lists.example.org',
      '554 5.7.1 <x@lists.example.org>: Relay access denied'],
    ['look-alike of a local domain is not local', facts('none', false, false), 'x@notexample.com',
      '554 5.7.1 <x@notexample.com>: Relay access denied'],
  ];

  for (const [name, session, rcpt, expected] of table) {
    it(`${name}: ${rcpt} -> ${expected ?? 'ok'}`, () => {
      const r = checkRcptTo(session, rcpt, local);
      assert.equal(r === undefined ? undefined : formatReply(r), expected);
    });
  }

  it('the denial reply carries code, enhanced code and text separately', () => {
    const r = checkRcptTo(facts('none', false, false), 'x@example.net', local);
    assert.deepEqual(r, { code: 554, enhanced: '5.7.1', text: '<x@example.net>: Relay access denied' });
  });
});

describe('checkMailFrom', () => {
  it('auth=required refuses unauthenticated sessions with 530 5.7.0', () => {
    for (const trusted of [false, true]) {
      const r = checkMailFrom(facts('required', trusted, false));
      assert.ok(r, `trusted=${trusted}`);
      assert.equal(r.code, 530);
      assert.equal(r.enhanced, '5.7.0');
      assert.equal(formatReply(r), '530 5.7.0 Authentication required');
    }
  });

  it('accepts authenticated sessions on auth=required, and anyone elsewhere', () => {
    assert.equal(checkMailFrom(facts('required', false, true)), undefined);
    assert.equal(checkMailFrom(facts('optional', false, false)), undefined);
    assert.equal(checkMailFrom(facts('none', false, false)), undefined);
  });
});

describe('checkSenderLogin ([auth] senders)', () => {
  const senders = { alice: ['alice@example.com', '@example.org'] };
  const cases: Array<[string | undefined, string, string | undefined]> = [
    ['alice', 'alice@example.com', undefined],
    ['alice', 'ALICE@example.COM', undefined],
    ['alice', 'x@example.org', undefined],
    ['alice', '', undefined],
    ['alice', 'x@sub.example.org', '553 5.7.1 <x@sub.example.org>: Sender address rejected: not owned by user alice'],
    ['alice', 'alice', '553 5.7.1 <alice>: Sender address rejected: not owned by user alice'],
    ['bob', 'bob@example.com', '553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user bob'],
    ['constructor', 'a@example.com', '553 5.7.1 <a@example.com>: Sender address rejected: not owned by user constructor'],
    [undefined, 'anyone@example.net', undefined],
  ];
  for (const [user, sender, want] of cases) {
    it(`${user ?? '(not authenticated)'} as <${sender}>: ${want ?? 'allowed'}`, () => {
      const r = checkSenderLogin(senders, user, sender);
      assert.equal(r && formatReply(r), want);
    });
  }
  it('binds nobody without [auth] senders', () => {
    assert.equal(checkSenderLogin(undefined, 'bob', 'x@example.net'), undefined);
  });
});
