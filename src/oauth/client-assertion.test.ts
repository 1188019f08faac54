// The client assertion as Microsoft Entra reads it: checked by test/peers/entra-token.ts,
// which verifies the signature with the certificate's public key on its own.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appCertificate } from '../../test/peers/app-cert.js';
import { testCerts } from '../../test/peers/certs.js';
import { checkAssertion } from '../../test/peers/entra-token.js';
import { AssertionKeyError, clientAssertion, loadAssertionKey } from './client-assertion.js';

const AUD = 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token';
const part = (jwt: string, i: number) => JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString('utf8')) as Record<string, unknown>;

function loadError(cert: string, key: string): AssertionKeyError {
  try { loadAssertionKey(cert, key); } catch (e) { assert.ok(e instanceof AssertionKeyError, String(e)); return e; }
  assert.fail('expected the pair to be refused');
}

describe('clientAssertion', () => {
  it('is a PS256 JWT with typ, x5t#S256 and the claims Microsoft asks for, and its signature verifies', () => {
    const app = appCertificate();
    const k = loadAssertionKey(app.certFile, app.keyFile);
    const now = 1_800_000_000_000;
    const jwt = clientAssertion(k, 'client-1', AUD, now);
    const header = part(jwt, 0);
    assert.deepEqual(header, { alg: 'PS256', typ: 'JWT', 'x5t#S256': crypto.createHash('sha256').update(new crypto.X509Certificate(app.cert).raw).digest('base64url') });
    const claims = part(jwt, 1);
    assert.deepEqual({ ...claims, jti: typeof claims['jti'] }, { aud: AUD, iss: 'client-1', sub: 'client-1', jti: 'string', nbf: 1_800_000_000, iat: 1_800_000_000, exp: 1_800_000_600 });
    assert.equal(checkAssertion(jwt, { certificate: app.cert }, 'client-1', AUD, new Set(), 1_800_000_000), undefined);
  });

  it('has a new jti each time, and another key\'s signature does not verify', () => {
    const app = appCertificate();
    const k = loadAssertionKey(app.certFile, app.keyFile);
    const [a, b] = [clientAssertion(k, 'c', AUD), clientAssertion(k, 'c', AUD)];
    assert.notEqual(part(a, 1)['jti'], part(b, 1)['jti']);
    const other = appCertificate('other');
    const refused = checkAssertion(a, { certificate: other.cert }, 'c', AUD, new Set(), Math.floor(Date.now() / 1000));
    assert.equal(refused?.[1]['error_codes']?.toString(), '700027', 'the thumbprint names a certificate the app does not have');
  });
});

describe('loadAssertionKey', () => {
  it('says which file cannot be read, is no PEM, is no RSA key, or is not the certificate\'s key', () => {
    const app = appCertificate();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-assert-'));
    try {
      assert.match(loadError(path.join(dir, 'missing.crt'), app.keyFile).message, /^cannot read assertion_certificate \S+missing\.crt \(ENOENT\)$/);
      const junk = path.join(dir, 'junk.pem');
      fs.writeFileSync(junk, 'not a certificate\n');
      const e1 = loadError(junk, app.keyFile);
      assert.match(e1.message, /^assertion_certificate \S+junk\.pem is not a PEM certificate/);
      assert.match(e1.fix, /uploaded to the app registration/);
      assert.match(loadError(app.certFile, junk).message, /^assertion_key \S+junk\.pem is not a PEM private key/);
      const ec = testCerts().client;
      const e2 = loadError(ec.certFile, ec.keyFile);
      assert.match(e2.message, /is a ec key; Microsoft Entra signs in apps with RSA certificates \(PS256\)/);
      assert.match(e2.fix, /openssl req -x509 -newkey rsa:2048/);
      assert.match(loadError(app.certFile, appCertificate('other').keyFile).message, /is not the key of assertion_certificate/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
