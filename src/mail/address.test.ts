import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { domainMatches, domainOf } from './address.js';

describe('domainMatches', () => {
  it('matches a domain and, for ".x" entries, its subdomains, in any case', () => {
    assert.equal(domainMatches('Example.COM', ['example.com']), true);
    assert.equal(domainMatches('mail.example.com', ['.example.com']), true);
    assert.equal(domainMatches('example.com', ['.example.com']), false);
    assert.equal(domainMatches('badexample.com', ['.example.com']), false);
  });

  it('takes an A-label and its U-label for one domain, both ways (addresses are carried as sent, issue 21)', () => {
    assert.equal(domainMatches('xn--bcher-kva.example', ['bücher.example']), true);
    assert.equal(domainMatches('BÜCHER.example', ['xn--bcher-kva.example']), true);
    assert.equal(domainMatches('mail.xn--bcher-kva.example', ['.bücher.example']), true);
    assert.equal(domainMatches('xn--bcher-kva.example', ['bucher.example']), false);
  });

  it('domainOf keeps the form it was given', () => {
    assert.equal(domainOf('Bob@XN--BCHER-KVA.example.'), 'xn--bcher-kva.example');
    assert.equal(domainOf('"a@b"@c.example'), 'c.example');
  });
});
