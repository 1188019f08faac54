// The server certificate for STARTTLS and implicit TLS listeners: the
// configured pair, or a self-signed one generated into data_dir on first start
// (and reused after), with a warning, so TLS works out of the box. The
// generated one names every way a local client reaches it (host name,
// localhost, 127.0.0.1, ::1, the listen addresses), so pinning it as the CA
// is enough to verify it.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import selfsigned from 'selfsigned';
import type { ServerTlsConfig } from '../config/types.js';

export interface CertPair { readonly cert: Buffer; readonly key: Buffer; readonly selfSigned: boolean; readonly certFile: string }

/**
 * The names a generated certificate carries: the host name, localhost, 127.0.0.1, ::1 and each
 * listen host that is not a wildcard (0.0.0.0, ::), without repeats.
 */
export function selfSignedNames(hostname: string, listenHosts: readonly string[] = []): string[] {
  const names = [hostname, 'localhost', '127.0.0.1', '::1', ...listenHosts.filter((h) => h !== '0.0.0.0' && h !== '::' && h !== '')];
  return [...new Set(names.map((n) => n.toLowerCase()))];
}

/** Does the certificate cover every name (DNS names and IP addresses alike)? */
function covers(x: crypto.X509Certificate, names: readonly string[]): boolean {
  return names.every((n) => (net.isIP(n) ? x.checkIP(n) : x.checkHost(n, { subject: 'never' })) !== undefined);
}

export async function loadServerCert(tls: ServerTlsConfig, dataDir: string, hostname: string,
  warn: (m: string) => void, listenHosts: readonly string[] = []): Promise<CertPair> {
  if (tls.certificate && tls.key) {
    const cert = fs.readFileSync(tls.certificate);
    const days = (new Date(new crypto.X509Certificate(cert).validTo).getTime() - Date.now()) / 86_400_000;
    // clients will refuse it, but a relay that still takes mail from loopback beats one that does not start
    if (days < 0) warn(`the server certificate ${tls.certificate} has expired; clients that verify it will refuse TLS. Renew it and send SIGHUP`);
    else if (days < 14) warn(`the server certificate ${tls.certificate} expires in ${Math.floor(days)} days; renew it and send SIGHUP`);
    return { cert, key: fs.readFileSync(tls.key), selfSigned: false, certFile: tls.certificate };
  }
  const dir = path.join(dataDir, 'tls');
  const certFile = path.join(dir, 'selfsigned.pem');
  const keyFile = path.join(dir, 'selfsigned.key');
  const names = selfSignedNames(hostname, listenHosts);
  let why = '';
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const cert = fs.readFileSync(certFile);
    const x = new crypto.X509Certificate(cert);
    const fresh = new Date(x.validTo).getTime() > Date.now() + 86_400_000;
    // one generated before the host name or a listen address changed (or by an older version, which named the host only)
    if (fresh && covers(x, names)) {
      warn(`using the self-signed certificate ${certFile}; clients cannot verify it (unless they pin it as their CA). Set [tls] certificate and key for a real one`);
      return { cert, key: fs.readFileSync(keyFile), selfSigned: true, certFile };
    }
    why = fresh ? ` (the one there lacked some of these names)` : ' (the one there expires within a day)';
  }
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const pems = await selfsigned.generate([{ name: 'commonName', value: hostname }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: names.map((n) => (net.isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) }],
  });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  warn(`generated a self-signed certificate for ${hostname} in ${certFile}${why}, for ${names.join(', ')}; clients cannot verify it unless they pin it as their CA. Set [tls] certificate and key for a real one`);
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), selfSigned: true, certFile };
}
