// What the probe says about an upstream's certificate: the names it carries, its validity and
// issuer, and whether it would pass the TLS level. The handshake itself runs without
// verification so that a bad certificate can still be shown; the checks are redone here with
// the same identity check delivery uses (smtp/upstream-policy.ts connectionOptions).
import type tls from 'node:tls';

/** OpenSSL's verify codes as Node reports them, in the words of its error messages (which smtp/wording.ts tlsAdvice reads). */
const CHAIN_ERRORS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  CERT_REVOKED: 'certificate revoked',
};

export function chainErrorMessage(code: string): string {
  return CHAIN_ERRORS[code] ?? code;
}

/** "DNS:localhost, IP Address:127.0.0.1", or the subject CN when there is no subjectAltName. */
export function certificateNames(cert: tls.PeerCertificate): string {
  return cert.subjectaltname || `CN=${cert.subject?.CN ?? '(none)'}`;
}

/** One line for the certificate step: names, validity, issuer. */
export function describeCertificate(cert: tls.PeerCertificate, protocol: string | null): string {
  const issuer = cert.issuer?.CN ?? cert.issuer?.O ?? '(unknown issuer)';
  return `${protocol ?? 'TLS'}, names ${certificateNames(cert)}; valid until ${cert.valid_to}; issued by ${issuer}`;
}

export interface CertificateCheck {
  /** Why verification fails, as Node would say it; undefined when the certificate passes. */
  readonly problem?: string;
}

/**
 * The chain (as the handshake found it) and the host name, checked the way `verify` does.
 * `identity` is the checkServerIdentity delivery uses; `host` is the URL's host.
 */
export function checkCertificate(socket: tls.TLSSocket, host: string,
  identity: (host: string, cert: tls.PeerCertificate) => Error | undefined): CertificateCheck {
  const chain = socket.authorizationError;
  if (chain) return { problem: chainErrorMessage(String(chain)) };
  const err = identity(host, socket.getPeerCertificate());
  return err ? { problem: err.message } : {};
}
