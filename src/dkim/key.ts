// DKIM keys as the rest of the program sees them: a private key file parsed into its
// algorithm and size, the public key's p= value (RFC 6376 §3.6.1; RFC 8463 §4 for
// Ed25519), the TXT record to publish, and the default selector. No I/O here.
import crypto, { type KeyObject } from 'node:crypto';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface ParsedKey {
  readonly key: KeyObject;
  readonly algorithm: DkimAlgorithm;
  /** RSA modulus length; 256 for Ed25519. */
  readonly bits: number;
}

/** Below this an RSA key is refused: RFC 8301 §3.2 (verifiers must not accept smaller keys). */
export const RSA_MIN_BITS = 1024;
/** Below this an RSA key gets a warning: RFC 8301 §3.2 says signers SHOULD use at least 2048. */
export const RSA_GOOD_BITS = 2048;

/** A PEM private key (PKCS#8 or PKCS#1) -> its algorithm and size, or a sentence saying why it cannot sign. */
export function parsePrivateKey(pem: Buffer | string): ParsedKey | { error: string } {
  let key: KeyObject;
  try {
    key = crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    const text = String(pem);
    if (text.includes('ENCRYPTED')) return { error: 'it is encrypted with a passphrase, which smarthost cannot type in' };
    if (text.includes('PUBLIC KEY')) return { error: 'it holds a public key, not the private key' };
    return { error: `it is not a PEM private key (${(e as Error).message})` };
  }
  if (key.asymmetricKeyType === 'ed25519') return { key, algorithm: 'ed25519-sha256', bits: 256 };
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS) return { error: `it is a ${bits}-bit RSA key; receivers ignore signatures from keys under ${RSA_MIN_BITS} bits (RFC 8301)` };
    return { key, algorithm: 'rsa-sha256', bits };
  }
  return { error: `it is a${key.asymmetricKeyType === 'ec' ? 'n' : ''} ${key.asymmetricKeyType} key; DKIM signs with RSA or Ed25519 keys` };
}

/** "rsa" or "ed25519": the k= tag and the word people use. */
export function keyKind(algorithm: DkimAlgorithm): 'rsa' | 'ed25519' {
  return algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
}

/**
 * The p= value for the key: base64 of the SubjectPublicKeyInfo DER for RSA (RFC 6376 §3.6.1),
 * base64 of the bare 32-byte public key for Ed25519 (RFC 8463 §4).
 */
export function publicKeyValue(key: KeyObject): string {
  const pub = crypto.createPublicKey(key);
  if (pub.asymmetricKeyType === 'ed25519') {
    const x = pub.export({ format: 'jwk' }).x!;
    return Buffer.from(x, 'base64url').toString('base64');
  }
  return pub.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** The record's text, one string: "v=DKIM1; k=rsa; p=…". */
export function recordText(parsed: Pick<ParsedKey, 'key' | 'algorithm'>): string {
  return `v=DKIM1; k=${keyKind(parsed.algorithm)}; p=${publicKeyValue(parsed.key)}`;
}

/**
 * `SELECTOR._domainkey.DOMAIN IN TXT "…" "…"`: a TXT string holds at most 255 bytes (RFC 1035
 * §3.3), so a 2048-bit RSA record is split; a resolver joins the strings again (RFC 6376 §3.6.2.2).
 */
export function txtRecordLine(domain: string, selector: string, text: string): string {
  const strings: string[] = [];
  for (let i = 0; i < text.length; i += 255) strings.push(`"${text.slice(i, i + 255)}"`);
  return `${selector}._domainkey.${domain} IN TXT ${strings.join(' ')}`;
}

/** "s202612" for December 2026 (UTC): a dated selector, so the next key gets a new name. */
export function defaultSelector(now = new Date()): string {
  return `s${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** Tags of a DKIM record or DKIM-Signature value (RFC 6376 §3.2): names lower-cased, folding whitespace removed. */
export function parseTags(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).replace(/[ \t\r\n]+/g, ''));
  }
  return tags;
}

/** Selector and domain syntax for the config and keygen: DNS labels (RFC 6376 §3.1 allows dotted selectors). */
export const DNS_NAME = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*$/;
