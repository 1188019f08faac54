import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OAUTHBEARER_ABORT, describeErrorChallenge, oauthBearerResponse, xoauth2Response } from './bearer-sasl.js';

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('OAuth SASL responses', () => {
  it('XOAUTH2: user=…^Aauth=Bearer …^A^A', () => {
    assert.equal(decode(xoauth2Response('alice@example.com', 'ya29.x')), 'user=alice@example.com\x01auth=Bearer ya29.x\x01\x01');
  });

  it('OAUTHBEARER: the gs2 header escapes "," and "=" (RFC 5801), then host, port and auth', () => {
    assert.equal(decode(oauthBearerResponse('a,b=c@example.com', 'smtp.example.com', 587, 'tok')),
      'n,a=a=2Cb=3Dc@example.com,\x01host=smtp.example.com\x01port=587\x01auth=Bearer tok\x01\x01');
    assert.equal(decode(OAUTHBEARER_ABORT), '\x01');
  });

  it('describes the JSON error challenge of a refused token', () => {
    const json = Buffer.from('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').toString('base64');
    assert.equal(describeErrorChallenge(`334 ${json}`), 'status 400, scope https://mail.google.com/, schemes Bearer');
    assert.equal(describeErrorChallenge('535 5.7.8 nope'), undefined);
    assert.equal(describeErrorChallenge('334 not-json'), undefined);
  });
});
