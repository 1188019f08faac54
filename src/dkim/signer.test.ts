import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { parseTags } from './key.js';
import { headerFields } from '../mail/header-section.js';
import { dkimSignature, relaxedHeader, RelaxedBodyHash, signedFields } from './signer.js';

const edKey = crypto.generateKeyPairSync('ed25519').privateKey;

/** mailauth's relaxed body hash (bh=) for a message with this body: the reference. */
async function mailauthBodyHash(body: Buffer): Promise<string> {
  const msg = Buffer.concat([Buffer.from('From: a@example.com\r\n\r\n'), body]);
  const r = await dkimSign(msg, { canonicalization: 'relaxed/relaxed', signatureData: [{ signingDomain: 'example.com', selector: 's', privateKey: edKey.export({ format: 'pem', type: 'pkcs8' }) }] } as unknown as Parameters<typeof dkimSign>[1]);
  return parseTags(r.signatures.replace(/^DKIM-Signature:/i, '')).get('bh')!;
}

function ourBodyHash(body: Buffer, cuts: readonly number[]): string {
  const h = new RelaxedBodyHash();
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) { h.update(body.subarray(at, Math.max(at, c))); at = Math.max(at, c); }
  h.update(body.subarray(at));
  return h.digest();
}

describe('relaxed body hash', () => {
  it('equals mailauth\'s for any body of spaces, tabs, blank lines and 8-bit bytes, cut into chunks anywhere', async () => {
    const piece = fc.constantFrom('a', 'b', ' ', '  ', '\t', '\r\n', '\r\n\r\n', '\xfc', '\xa0', '.');
    await fc.assert(fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(200), { maxLength: 5 }), async (pieces, cuts) => {
      const body = Buffer.from(`${pieces.join('')}\r\n`, 'latin1');
      assert.equal(ourBodyHash(body, cuts), await mailauthBodyHash(body));
    }), { numRuns: 300 });
  });

  it('drops trailing empty lines and whitespace before line ends (RFC 6376 §3.4.5 example)', () => {
    const expected = crypto.createHash('sha256').update(' C\r\nD E\r\n').digest('base64');
    assert.equal(ourBodyHash(Buffer.from(' C \r\nD \t E\r\n\r\n\r\n'), [1, 5]), expected);
  });
});

describe('header fields', () => {
  it('canonicalizes as RFC 6376 §3.4.5 does, and leaves byte 0xA0 (part of UTF-8 "à") alone', () => {
    assert.equal(relaxedHeader('A: X'), 'a:X');
    assert.equal(relaxedHeader('B : Y\t\r\n\tZ  '), 'b:Y Z');
    assert.equal(relaxedHeader('Subject: voil\xc3\xa0'), 'subject:voil\xc3\xa0');
  });

  it('signs each instance bottom-up and lists From, Subject, To, Cc and Reply-To once more (oversigning)', () => {
    const fields = headerFields('Received: x\r\nFrom: a@example.com\r\nTo: b@example.net\r\nSubject: one\r\nSubject: two\r\nDate: today\r\n\r\n');
    const { h, data } = signedFields(fields, ['from', 'subject', 'date', 'reply-to', 'message-id']);
    assert.deepEqual(h, ['from', 'from', 'subject', 'subject', 'subject', 'date', 'reply-to']);
    assert.equal(data, 'from:a@example.com\r\nsubject:two\r\nsubject:one\r\ndate:today\r\n');
  });

  it('folds the field into lines of at most 78 characters', () => {
    const fields = headerFields('From: a@example.com\r\n\r\n');
    const names = ['from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc', 'mime-version', 'content-type', 'list-unsubscribe-post', 'list-unsubscribe'];
    const sig = dkimSignature(fields, 'x'.repeat(44), { domain: 'example.com', selector: 's', algorithm: 'ed25519-sha256', key: edKey, headers: names });
    for (const line of sig.split('\r\n')) assert.ok(line.length <= 78, line);
    assert.match(sig, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.com; s=s;\r\n\tt=\d+; h=from:from:/);
  });
});
