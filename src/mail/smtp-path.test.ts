import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatLocalPart, localValue, parsePath, type PathResult } from './smtp-path.js';

const rcpt = (path: string, smtputf8 = false) => parsePath(Buffer.from(`RCPT TO:${path}`, 'latin1'), 'RCPT', smtputf8);
const mail = (path: string, smtputf8 = false) => parsePath(Buffer.from(`MAIL FROM:${path}`, 'latin1'), 'MAIL', smtputf8);
const address = (r: PathResult) => (r.ok ? r.path.address : `(${r.problem})`);
/** A UTF-8 string as the latin1 "byte string" a raw command line holds. */
const bytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

describe('parsePath', () => {
  const good: Array<[string, string, string]> = [
    ['<bob@example.net>', 'bob@example.net', 'example.net'],
    ['<Bob.Smith@Example.NET>', 'Bob.Smith@Example.NET', 'Example.NET'],           // case kept
    ['<user@xn--bcher-kva.example>', 'user@xn--bcher-kva.example', 'xn--bcher-kva.example'], // A-label kept
    ['<"john doe"@example.net> NOTIFY=NEVER', '"john doe"@example.net', 'example.net'],
    ['<"a>b"@local.example>', '"a>b"@local.example', 'local.example'],
    ['<"bob@evil.example> x"@local.example>', '"bob@evil.example> x"@local.example', 'local.example'],
    ['<"a\\"b\\\\c"@example.net>', '"a\\"b\\\\c"@example.net', 'example.net'],
    ['<@relay.example,@hop.example:bob@example.net>', 'bob@example.net', 'example.net'], // source route dropped
    ['<bob@[192.0.2.1]>', 'bob@[192.0.2.1]', '[192.0.2.1]'],
    ['<bob@[IPv6:2001:db8::1]>', 'bob@[IPv6:2001:db8::1]', '[IPv6:2001:db8::1]'],
    ['<Postmaster>', 'Postmaster', ''],
    [' <bob@example.net>', 'bob@example.net', 'example.net'],
  ];
  for (const [path, want, domain] of good) {
    it(`reads ${path}`, () => {
      const r = rcpt(path);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.path.address, want);
      assert.equal(r.path.domain, domain);
    });
  }

  const bad = ['bob@example.net', '<bob@example.net', '<bob@example.net>x', '<"bob@example.net>', '<bob>', '<bob@>', '<@example.net>',
    '<bob@example..net>', '<bob@-example.net>', '<bob@example.net.>', '<.bob@example.net>', '<bob..x@example.net>', '<bob.@example.net>',
    '<bob@ex ample.net>', '<a b@example.net>', '<a"b@example.net>', '<bob@[300.1.1.1]>', '<bob@[x:y]>', '<"a\tb"@example.net>',
    '<"a\\\x01"@example.net>', '<>', '<a@b@example.net>', '<a(b)@example.net>'];
  for (const path of bad) {
    it(`refuses RCPT TO:${JSON.stringify(path)} as syntax`, () => assert.equal(address(rcpt(path)), '(syntax)'));
  }

  it('takes the null sender only in MAIL, the bare postmaster only in RCPT', () => {
    assert.equal(address(mail('<> SIZE=10')), '');
    assert.equal(address(mail('<postmaster>')), '(syntax)');
    assert.equal(address(rcpt('<postmaster>')), 'postmaster');
  });

  it('refuses 8-bit bytes without SMTPUTF8, takes UTF-8 with it, refuses invalid UTF-8 either way', () => {
    assert.equal(address(rcpt(bytes('<jörg@example.net>'))), '(undeclared)');
    assert.equal(address(rcpt(bytes('<user@bücher.example>'))), '(undeclared)');
    assert.equal(address(rcpt('<j\xf6rg@example.net>')), '(undeclared)');
    assert.equal(address(rcpt(bytes('<jörg@bücher.example>'), true)), 'jörg@bücher.example');
    assert.equal(address(rcpt(bytes('<"jö rg"@example.net>'), true)), '"jö rg"@example.net');
    assert.equal(address(rcpt('<j\xf6rg@example.net>', true)), '(syntax)');
    assert.equal(address(mail(bytes('<jörg@example.net> SMTPUTF8'))), 'jörg@example.net');
    assert.equal(address(mail(bytes('<jörg@example.net> BODY=8BITMIME smtputf8'))), 'jörg@example.net');
    assert.equal(address(mail(bytes('<jörg@example.net> XSMTPUTF8'))), '(undeclared)');
  });

  it('gives what follows the path as the parameters', () => {
    const r = mail('<a@example.net> SMTPUTF8 BODY=8BITMIME');
    assert.ok(r.ok);
    assert.equal(r.path.rest, ' SMTPUTF8 BODY=8BITMIME');
    assert.equal(r.path.smtputf8, true);
    assert.equal((mail('<a@example.net> BODY=8BITMIME') as { path: { smtputf8: boolean } }).path.smtputf8, false);
  });
});

describe('localValue / formatLocalPart', () => {
  it('quotes only what is not a dot-string', () => {
    assert.equal(formatLocalPart('bob.smith'), 'bob.smith');
    assert.equal(formatLocalPart('john doe'), '"john doe"');
    assert.equal(formatLocalPart('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(formatLocalPart('.x'), '".x"');
    assert.equal(localValue('"a\\"b\\\\c"'), 'a"b\\c');
  });
});

/** The text after the last "@" outside a quoted string (independent of the parser's regular expression). */
function afterLastUnquotedAt(text: string): string {
  let quoted = false, at = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\') { i++; continue; }
    if (c === '"') quoted = !quoted;
    else if (c === '@' && !quoted) at = i;
  }
  return at < 0 ? '' : text.slice(at + 1);
}

describe('parsePath properties', () => {
  // local-part values from the characters that matter: specials, quotes, backslash, space, dots, UTF-8
  const localChar = fc.constantFrom(...'ab.Z9"\\ @<>:,[]()!#~'.split(''), 'é', '日');
  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
  const domain = fc.oneof(fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
    fc.ipV4().map((ip) => `[${ip}]`), fc.ipV6().map((ip) => `[IPv6:${ip}]`));

  it('parse(format(x)) gives x back, for every local part and domain', () => {
    fc.assert(fc.property(fc.string({ unit: localChar, minLength: 1, maxLength: 20 }), domain, (value, dom) => {
      const local = formatLocalPart(value);
      const r = rcpt(bytes(`<${local}@${dom}> NOTIFY=NEVER`), true);
      assert.ok(r.ok, `${local}@${dom}: ${JSON.stringify(r)}`);
      assert.equal(localValue(r.path.localPart), value);
      assert.equal(r.path.domain, dom);
      assert.equal(r.path.address, `${local}@${dom}`);
      assert.equal(r.path.rest, ' NOTIFY=NEVER');
    }), { numRuns: 2000 });
  });

  it('never throws, and never returns a domain other than the bytes after the last unquoted "@"', () => {
    const piece = fc.constantFrom('<', '>', '"', '\\', '@', '.', ' ', ':', ',', '[', ']', 'a', 'b', 'xn--', '-', '\xc3', '\xa9', '\xff', 'IPv6:', '1');
    fc.assert(fc.property(fc.array(piece, { maxLength: 30 }).map((p) => p.join('')), fc.boolean(), fc.boolean(), (text, utf8, isMail) => {
      const line = Buffer.from(`${isMail ? 'MAIL FROM' : 'RCPT TO'}:${text}`, 'latin1');
      const r = parsePath(line, isMail ? 'MAIL' : 'RCPT', utf8);
      if (!r.ok) return;
      assert.ok(text.replace(/^ +/, '').startsWith(`<${bytes(r.path.text)}>`), `${text} -> ${r.path.text}`);
      assert.equal(r.path.domain, afterLastUnquotedAt(r.path.text));
      assert.ok(r.path.address.endsWith(r.path.domain));
    }), { numRuns: 20000 });
  });
});
