// The server certificate for STARTTLS and implicit TLS listeners: the
// configured pair, or a self-signed one generated into data_dir on first start
// (and reused after), with a warning, so TLS works out of the box.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import selfsigned from 'selfsigned';
import type { ServerTlsConfig } from '../config/types.js';

export interface CertPair { readonly cert: Buffer; readonly key: Buffer; readonly selfSigned: boolean; readonly certFile: string }

export async function loadServerCert(tls: ServerTlsConfig, dataDir: string, hostname: string,
  warn: (m: string) => void): Promise<CertPair> {
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
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const cert = fs.readFileSync(certFile);
    const x = new crypto.X509Certificate(cert);
    if (new Date(x.validTo).getTime() > Date.now() + 86_400_000) {
      warn(`using the self-signed certificate ${certFile}; clients cannot verify it. Set [tls] certificate and key for a real one`);
      return { cert, key: fs.readFileSync(keyFile), selfSigned: true, certFile };
    }
  }
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const pems = await selfsigned.generate([{ name: 'commonName', value: hostname }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  warn(`generated a self-signed certificate for ${hostname} in ${certFile}; clients cannot verify it. Set [tls] certificate and key for a real one`);
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), selfSigned: true, certFile };
}
