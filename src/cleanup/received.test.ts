import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientInfo } from '../mail/envelope.js';
import { receivedHeader, rfc5322Date } from './received.js';

const DATE = new Date(Date.UTC(2026, 10, 22, 9, 0, 1));
const DATE_RE = /(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/;

const plain: ClientInfo = { address: '192.0.2.10', hostname: 'mua.example.com', helo: 'laptop', protocol: 'ESMTP' };
const full: ClientInfo = {
  address: '2001:db8::25', hostname: 'unknown', helo: 'client.example.org', protocol: 'ESMTPSA',
  tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, authUser: 'alice', authMethod: 'PLAIN',
};

function header(client: ClientInfo, recipients: string[] = ['bob@example.net']): string {
  return receivedHeader({ client, by: 'relay.example.com', id: '0123456789ABCDEF01', recipients, date: DATE });
}

describe('receivedHeader', () => {
  it('names the client by helo, reverse name and address', () => {
    const h = header(plain);
    assert.ok(h.startsWith('Received: from laptop (mua.example.com [192.0.2.10])\r\n'), h);
  });

  it('stays ASCII without SMTPUTF8: a U-label HELO as its A-label, other 8-bit as "?"; UTF-8 kept with SMTPUTF8 (issue 21)', () => {
    const utf8 = { ...plain, helo: 'bücher.example' };
    assert.ok(header(utf8).startsWith('Received: from xn--bcher-kva.example (mua.example.com [192.0.2.10])'), header(utf8));
    assert.ok(header({ ...plain, helo: 'b\ufffdcher example' }).startsWith('Received: from b?cher example ('));
    assert.match(header(plain, ['jörg@example.net']), /\tfor <j\?rg@example\.net>; /);
    const kept = receivedHeader({ client: utf8, by: 'relay.example.com', id: '0123456789ABCDEF01', recipients: ['jörg@bücher.example'], date: DATE, smtputf8: true });
    assert.ok(kept.startsWith('Received: from bücher.example ('), kept);
    assert.match(kept, /\tfor <jörg@bücher\.example>; /);
  });

  it('says "unknown" for an empty helo', () => {
    const h = header({ ...plain, helo: '' });
    assert.ok(h.startsWith('Received: from unknown (mua.example.com [192.0.2.10])'), h);
  });

  it('includes TLS version and cipher when present', () => {
    assert.match(header(full), /\r\n\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384\)\r\n/);
    assert.doesNotMatch(header(plain), /using|cipher/);
  });

  it('names the authenticated sender only when asked to ([auth] authenticated_header)', () => {
    assert.doesNotMatch(header(full), /Authenticated/);
    assert.match(receivedHeader({ client: full, by: 'relay.example.com', id: '0123456789ABCDEF01', recipients: ['bob@example.net'], date: DATE, showAuthUser: true }),
      /\r\n\t\(Authenticated sender: alice\)\r\n/);
    assert.doesNotMatch(header(plain), /Authenticated/);
  });

  it('says by whom, with which protocol and under which queue id', () => {
    assert.match(header(full), /\r\n\tby relay\.example\.com \(smarthost\) with ESMTPSA id 0123456789ABCDEF01\r\n/);
    assert.match(header(plain), /\tby relay\.example\.com \(smarthost\) with ESMTP id 0123456789ABCDEF01\r\n/);
  });

  it('has "for <rcpt>" only with exactly one recipient', () => {
    assert.match(header(plain, ['bob@example.net']), /\r\n\tfor <bob@example\.net>; /);
    assert.doesNotMatch(header(plain, ['bob@example.net', 'carol@example.net']), /for </);
    assert.doesNotMatch(header(plain, []), /for </);
  });

  it('ends with the date and CRLF; every line joined by CRLF, continuation lines start with a tab', () => {
    for (const h of [header(plain), header(full), header(full, ['a@x.example', 'b@x.example'])]) {
      assert.ok(h.endsWith('\r\n'), 'ends with CRLF');
      assert.ok(!h.endsWith('\r\n\r\n'), 'no blank line (that would end the header section)');
      const body = h.slice(0, -2);
      assert.doesNotMatch(body.replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF');
      const lines = body.split('\r\n');
      assert.ok(lines[0]!.startsWith('Received: '));
      for (const l of lines.slice(1)) assert.ok(l.startsWith('\t'), `folded line ${JSON.stringify(l)}`);
      assert.match(lines[lines.length - 1]!, DATE_RE);
      assert.ok(lines[lines.length - 1]!.endsWith(rfc5322Date(DATE)));
    }
    assert.equal(header(full).split('\r\n').length, 5); // from, using, by, for/date, '' (the login name only when asked)
    assert.equal(header(plain).split('\r\n').length, 4);
  });
});

describe('rfc5322Date', () => {
  it('formats a date in RFC 5322 form with the local offset', () => {
    const s = rfc5322Date(DATE);
    assert.match(s, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/);
    // the same instant: parse it back
    assert.equal(new Date(s).getTime(), DATE.getTime());
  });

  it('gets day and month names right', () => {
    // local noon, so no time zone moves it to another day
    const d = new Date(2024, 1, 29, 12, 0, 0); // Thursday 29 February 2024
    assert.match(rfc5322Date(d), /^Thu, 29 Feb 2024 12:00:00 [+-]\d{4}$/);
  });
});
