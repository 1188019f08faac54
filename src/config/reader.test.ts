// "Did you mean" for values (issue 20): a typo is never "fixed" into a weaker setting, and one
// bad value gives one problem, not a cascade.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.js';
import { suggestValue } from './reader.js';

const LISTEN_TLS = ['none', 'starttls', 'starttls-required', 'implicit'];
const UPSTREAM_TLS = ['none', 'may', 'encrypt', 'verify'];

describe('suggestValue', () => {
  const cases: Array<[string, readonly string[], string | undefined]> = [
    ['starttls-requird', LISTEN_TLS, 'starttls-required'],
    ['starttls-req', LISTEN_TLS, 'starttls-required'],
    ['starttls-', LISTEN_TLS, 'starttls-required'],
    ['startls', LISTEN_TLS, 'starttls'],
    ['STARTTLS', LISTEN_TLS, 'starttls'],
    ['implict', LISTEN_TLS, 'implicit'],
    ['verfy', UPSTREAM_TLS, 'verify'],
    ['encrypted', UPSTREAM_TLS, 'encrypt'],
    ['requird', ['none', 'optional', 'required'], 'required'],
    ['TLS1.2', ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'], 'TLSv1.2'],
    ['yes', LISTEN_TLS, undefined],
    ['SSLv3', ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'], undefined],
    // Postfix words, two letters from the weakest level: never "none"
    ['dane', UPSTREAM_TLS, undefined],
    ['on', UPSTREAM_TLS, undefined],
    ['nne', UPSTREAM_TLS, 'none'],
  ];
  for (const [value, allowed, want] of cases) {
    it(`${value} -> ${want ?? 'nothing'}`, () => assert.equal(suggestValue(value, allowed), want));
  }
});

describe('a bad value in the config', () => {
  const problems = (text: string) => parseConfig(text, '/etc/smarthost/smarthost.toml').problems;

  it('tls = "starttls-requird" with AUTH: one problem, whose fix keeps TLS mandatory', () => {
    const p = problems('[[listen]]\naddress = "0.0.0.0:587"\ntls = "starttls-requird"\nauth = "required"\n');
    assert.equal(p.length, 1, JSON.stringify(p, null, 2));
    assert.equal(p[0]!.path, 'listen[0].tls');
    assert.equal(p[0]!.fix, 'write tls = "starttls-required"');
  });

  it('a bad auth or allow_plaintext_auth value is reported alone too', () => {
    assert.deepEqual(problems('[[listen]]\naddress = "0.0.0.0:587"\nauth = "requird"\n').map((x) => x.path), ['listen[0].auth']);
    assert.deepEqual(problems('[[listen]]\naddress = "0.0.0.0:587"\nauth = "required"\nallow_plaintext_auth = "yes"\n').map((x) => x.path), ['listen[0].allow_plaintext_auth']);
  });

  it('with nothing close, no weak default is offered: every value is listed', () => {
    const p = problems('[[listen]]\naddress = "0.0.0.0:587"\ntls = "yes"\n');
    assert.equal(p.length, 1);
    assert.equal(p[0]!.fix, 'write tls = "none" or "starttls" or "starttls-required" or "implicit"');
  });

  it('the AUTH-without-TLS problem still stands on its own', () => {
    const p = problems('[[listen]]\naddress = "0.0.0.0:587"\nauth = "required"\n');
    assert.deepEqual(p.map((x) => x.path), ['listen[0].auth']);
    assert.match(p[0]!.message, /offers AUTH but has no TLS/);
  });
});
