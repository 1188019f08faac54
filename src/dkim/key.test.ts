import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { defaultSelector, parsePrivateKey, parseTags, publicKeyValue, recordText, txtRecordLine } from './key.js';

const pem = (k: crypto.KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }).toString();

describe('DKIM keys', () => {
  it('reads RSA and Ed25519 keys with their algorithm and size', () => {
    const rsa = parsePrivateKey(pem(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
    assert.ok(!('error' in rsa));
    assert.equal(rsa.algorithm, 'rsa-sha256');
    assert.equal(rsa.bits, 2048);
    const ed = parsePrivateKey(pem(crypto.generateKeyPairSync('ed25519').privateKey));
    assert.ok(!('error' in ed));
    assert.equal(ed.algorithm, 'ed25519-sha256');
  });

  it('says why a key cannot sign: too small, public, EC, not a key', () => {
    const small = parsePrivateKey(pem(crypto.generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey));
    assert.match((small as { error: string }).error, /512-bit RSA key.*1024/);
    const pub = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    assert.match((parsePrivateKey(pub) as { error: string }).error, /public key, not the private key/);
    const ec = parsePrivateKey(pem(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    assert.match((ec as { error: string }).error, /an ec key; DKIM signs with RSA or Ed25519/);
    assert.match((parsePrivateKey('hello') as { error: string }).error, /not a PEM private key/);
  });

  it('publishes Ed25519 as the bare 32-byte key (RFC 8463) and RSA as SubjectPublicKeyInfo', () => {
    const ed = crypto.generateKeyPairSync('ed25519');
    assert.equal(Buffer.from(publicKeyValue(ed.privateKey), 'base64').length, 32);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const spki = crypto.createPublicKey({ key: Buffer.from(publicKeyValue(rsa.privateKey), 'base64'), format: 'der', type: 'spki' });
    assert.ok(spki.equals(rsa.publicKey));
  });

  it('splits a long record into strings of at most 255 characters that join back', () => {
    const rsa = parsePrivateKey(pem(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
    assert.ok(!('error' in rsa));
    const text = recordText(rsa);
    const line = txtRecordLine('example.com', 's1', text);
    assert.match(line, /^s1\._domainkey\.example\.com IN TXT "v=DKIM1; k=rsa; p=/);
    const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(strings.length >= 2 && strings.every((s) => s.length <= 255));
    assert.equal(strings.join(''), text);
    assert.equal(parseTags(strings.join('')).get('p'), publicKeyValue(rsa.key));
  });

  it('names the default selector after the month', () => {
    assert.equal(defaultSelector(new Date('2026-12-07T05:00:00Z')), 's202612');
    assert.equal(defaultSelector(new Date('2027-01-31T23:59:59Z')), 's202701');
  });
});
