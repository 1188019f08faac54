// The signed JWT an app sends instead of a client secret (RFC 7523 §2.2, OpenID Connect
// private_key_jwt), as Microsoft's libraries build it from a certificate: MSAL with a SHA-256
// thumbprint sends alg PS256 and x5t#S256, which Microsoft's certificate-credentials page now
// asks for; aud = the token endpoint, iss = sub = client_id, a fresh jti, 10 minutes of life.
// node:crypto signs one JWS well enough; a JWT library would add a dependency for ~20 lines.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { OAuthConfig } from '../config/types.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** MSAL's lifetime; Microsoft asks for a short one (5-10 minutes after nbf). */
const LIFETIME_S = 600;

/** A certificate and its private key, checked to belong together. */
export interface AssertionKey {
  readonly certificate: crypto.X509Certificate;
  readonly key: crypto.KeyObject;
  /** base64url SHA-256 of the certificate's DER: the x5t#S256 header. */
  readonly thumbprint: string;
}

/** Why the certificate or key cannot sign an assertion; `setting` names the config key to fix. */
export class AssertionKeyError extends Error {
  constructor(message: string, readonly fix: string) { super(message); }
}

/** Reads and checks the pair; throws AssertionKeyError saying what is wrong and how to fix it. */
export function loadAssertionKey(certificateFile: string, keyFile: string): AssertionKey {
  const read = (file: string, what: string) => {
    try { return fs.readFileSync(file); } catch (e) {
      throw new AssertionKeyError(`cannot read ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the path, and that the user smarthost runs as may read it');
    }
  };
  const certPem = read(certificateFile, 'assertion_certificate');
  const keyPem = read(keyFile, 'assertion_key');
  let certificate: crypto.X509Certificate;
  try { certificate = new crypto.X509Certificate(certPem); } catch (e) {
    throw new AssertionKeyError(`assertion_certificate ${certificateFile} is not a PEM certificate (${(e as Error).message})`, 'point it at the certificate (-----BEGIN CERTIFICATE-----) uploaded to the app registration');
  }
  let key: crypto.KeyObject;
  try { key = crypto.createPrivateKey(keyPem); } catch (e) {
    throw new AssertionKeyError(`assertion_key ${keyFile} is not a PEM private key (${(e as Error).message})`, 'point it at the unencrypted private key (-----BEGIN PRIVATE KEY-----), e.g. from openssl req -nodes');
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new AssertionKeyError(`assertion_key ${keyFile} is a ${key.asymmetricKeyType ?? 'non-RSA'} key; Microsoft Entra signs in apps with RSA certificates (PS256)`, 'make an RSA pair: openssl req -x509 -newkey rsa:2048 -nodes -days 730 -keyout app.key -out app.crt -subj /CN=smarthost');
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new AssertionKeyError(`assertion_key ${keyFile} is not the key of assertion_certificate ${certificateFile}`, 'point assertion_key at the private key that belongs to the certificate');
  }
  return { certificate, key, thumbprint: crypto.createHash('sha256').update(certificate.raw).digest('base64url') };
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');

/** A compact JWS (header.claims.signature) for one token request to `audience`. */
export function clientAssertion(k: AssertionKey, clientId: string, audience: string, nowMs = Date.now()): string {
  const now = Math.floor(nowMs / 1000);
  const header = { alg: 'PS256', typ: 'JWT', 'x5t#S256': k.thumbprint };
  const claims = { aud: audience, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + LIFETIME_S };
  const input = `${b64url(header)}.${b64url(claims)}`;
  // RFC 7518 §3.5: RSASSA-PSS with SHA-256, MGF1 with SHA-256, salt as long as the hash
  const signature = crypto.sign('sha256', Buffer.from(input), { key: k.key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
  return `${input}.${signature.toString('base64url')}`;
}

/** At start and reload: every app-only certificate pair must load, or the configuration is refused (Error: what and the fix). */
export function checkAssertionKeys(oauth: ReadonlyArray<OAuthConfig | undefined>): void {
  for (const o of oauth) {
    if (o?.grant !== 'client_credentials' || o.credential.kind !== 'certificate') continue;
    try { loadAssertionKey(o.credential.certificate, o.credential.key); } catch (e) {
      if (e instanceof AssertionKeyError) throw new Error(`${o.route === 'relay' ? '[relay]' : `route ${o.route}`}: ${e.message}; ${e.fix}`);
      throw e;
    }
  }
}
