// The Postfix-style password file shapes (issue 20): recognised, described without the password.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeShape, postfixShape } from './password-file.js';

describe('postfixShape', () => {
  it('recognises sasl_passwd lines with every kind of key', () => {
    for (const [line, shape] of [
      ['[smtp.example.com]:587 alice@example.com:s3cret', '[smtp.example.com]:587 alice@example.com:PASSWORD'],
      ['[smtp.example.com] alice:s3cret', '[smtp.example.com] alice:PASSWORD'],
      ['smtp.example.com:587\talice:s3:cr et', 'smtp.example.com:587 alice:PASSWORD'],
      ['@example.com alice:s3cret', '@example.com alice:PASSWORD'],
    ] as const) {
      const s = postfixShape(line, 'alice@example.com');
      assert.equal(s?.kind, 'sasl_passwd', line);
      assert.equal(s.shape, shape);
      assert.equal(s.line, 1);
    }
  });

  it('recognises user:password when the user is the configured username or an address', () => {
    assert.deepEqual(postfixShape('alice:s3cret', 'alice'), { kind: 'user-password', shape: 'alice:PASSWORD', line: 1, otherUser: false, certain: true });
    assert.deepEqual(postfixShape('Alice@Example.com:s3cret', 'alice@example.com'), { kind: 'user-password', shape: 'Alice@Example.com:PASSWORD', line: 1, otherUser: false, certain: true });
    assert.equal(postfixShape('bob@example.com:s3cret', 'alice')?.otherUser, true);
    assert.equal(postfixShape('bob@example.com:s3cret', 'alice')?.certain, false);
  });

  it('leaves passwords alone, also those with a colon or a space', () => {
    for (const p of ['s3cret', 'Tr0ub4dor:3', 'correct horse battery staple', 'my pass:word', 'p@ss:word', 'a:b']) {
      assert.equal(postfixShape(p, 'alice'), undefined, p);
    }
  });

  it('describes the line without the password', () => {
    const s = postfixShape('[smtp.example.com]:587 alice:VerySecret', 'alice')!;
    const text = describeShape('/etc/smarthost/relay.secret', s);
    assert.match(text, /line 1 looks like a line from Postfix's sasl_passwd \(\[smtp\.example\.com\]:587 alice:PASSWORD\)/);
    assert.doesNotMatch(text, /VerySecret/);
  });
});
