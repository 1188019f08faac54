// MTA-STS records and policy files (RFC 8461 §3.1, §3.2) and MX matching (§4.1), table-tested.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allowedBy, describePolicy, parseStsPolicy, parseStsRecord, MAX_AGE_LIMIT } from './sts-policy.js';

describe('the _mta-sts TXT record', () => {
  it('takes the one "v=STSv1" record and its id; other TXT records are ignored', () => {
    assert.deepEqual(parseStsRecord([['v=STSv1; id=20160831085700Z;']]), { kind: 'id', id: '20160831085700Z' });
    assert.deepEqual(parseStsRecord([['v=spf1 -all'], ['v=STSv1;', ' id=abc']]), { kind: 'id', id: 'abc' }, 'chunks of one record are joined');
    assert.deepEqual(parseStsRecord([['v=STSv1;id=x1;ext=1']]), { kind: 'id', id: 'x1' });
  });
  const none: Array<[string, string[][], RegExp]> = [
    ['no STS record', [['v=spf1 -all']], /no "v=STSv1" TXT record/],
    ['two STS records', [['v=STSv1; id=a'], ['v=STSv1; id=b']], /2 "v=STSv1" TXT records/],
    ['no id', [['v=STSv1;']], /no valid id/],
    ['an id with punctuation', [['v=STSv1; id=2020-01-01']], /no valid id/],
    ['an id of 33 characters', [[`v=STSv1; id=${'a'.repeat(33)}`]], /no valid id/],
    ['another version', [['v=STSv2; id=a']], /no "v=STSv1"/],
  ];
  for (const [name, txt, why] of none) {
    it(`is no policy with ${name}`, () => {
      const r = parseStsRecord(txt);
      assert.equal(r.kind, 'none');
      assert.match((r as { detail: string }).detail, why);
    });
  }
});

describe('the policy file', () => {
  it('parses version, mode, mx (several, wildcards) and max_age, CRLF or LF, unknown keys ignored', () => {
    const text = 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.Example.NET\r\nmax_age: 86400\r\nfuture: x\r\n';
    assert.deepEqual(parseStsPolicy(text), { policy: { mode: 'enforce', mx: ['mx1.example.com', '*.example.net'], maxAge: 86400 } });
    assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n\n'), { policy: { mode: 'none', mx: [], maxAge: 0 } });
  });
  it('uses the first occurrence of a key other than mx, and cuts max_age to a year', () => {
    const r = parseStsPolicy('version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 99999999999\n');
    assert.equal('error' in r ? r.error : '', 'max_age "99999999999" is not a number of seconds');
    assert.deepEqual(parseStsPolicy('version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n'),
      { policy: { mode: 'testing', mx: ['a.example'], maxAge: MAX_AGE_LIMIT } });
  });
  const bad: Array<[string, string, RegExp]> = [
    ['wrong version', 'version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 60\n', /version is "STSv2", not "STSv1"/],
    ['no version', 'mode: enforce\nmx: a.example\nmax_age: 60\n', /no "version" field/],
    ['a bad mode', 'version: STSv1\nmode: enforcing\nmx: a.example\nmax_age: 60\n', /mode is "enforcing", not enforce, testing or none/],
    ['a mode in capitals (the grammar is case-sensitive)', 'version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 60\n', /mode is "Enforce"/],
    ['no max_age', 'version: STSv1\nmode: enforce\nmx: a.example\n', /no "max_age" field/],
    ['a negative max_age', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n', /max_age "-1"/],
    ['enforce without mx', 'version: STSv1\nmode: enforce\nmax_age: 60\n', /mode enforce without any "mx" field/],
    ['a wildcard in the middle', 'version: STSv1\nmode: enforce\nmx: mx.*.example\nmax_age: 60\n', /mx "mx\.\*\.example" is not a host name/],
    ['an HTML page', '<html><body>Not here</body></html>\n', /is not "key: value"/],
  ];
  for (const [name, text, why] of bad) {
    it(`is refused with ${name}`, () => {
      const r = parseStsPolicy(text);
      assert.ok('error' in r, JSON.stringify(r));
      assert.match(r.error, why);
    });
  }
});

describe('MX host matching (RFC 8461 §4.1)', () => {
  const patterns = ['mx1.example.com', '*.example.net'];
  const table: Array<[string, string | undefined]> = [
    ['mx1.example.com', 'mx1.example.com'],
    ['MX1.Example.COM.', 'mx1.example.com'],
    ['mx2.example.com', undefined],
    ['mail.example.net', '*.example.net'],
    ['example.net', undefined],
    ['a.b.example.net', undefined],
    ['xexample.net', undefined],
  ];
  for (const [host, want] of table) it(`${host} -> ${want ?? 'no match'}`, () => assert.equal(allowedBy(host, patterns), want));
  it('describes a policy for log lines', () => {
    assert.equal(describePolicy('example.net', { id: 'a1', mode: 'enforce', mx: patterns, maxAge: 60 }),
      'MTA-STS policy of example.net (mode enforce, id a1, mx mx1.example.com, *.example.net)');
  });
});
