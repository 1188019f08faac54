// RSA certificates for app-only sign-in tests (Entra takes RSA for client assertions; the
// TLS test certificates of certs.ts are EC). Made with the openssl CLI, as an admin would,
// once per name and process, in a folder removed at exit.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface AppCert { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string }

let dir: string | undefined;
const made = new Map<string, AppCert>();

/** A self-signed RSA-2048 pair (key mode 0600); the same name gives the same pair. */
export function appCertificate(name = 'app'): AppCert {
  const known = made.get(name);
  if (known) return known;
  if (!dir) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-appcert-'));
    dir = d;
    process.once('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  }
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=smarthost ${name}`], { stdio: 'ignore' });
  fs.chmodSync(keyFile, 0o600);
  const pair = { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, keyFile };
  made.set(name, pair);
  return pair;
}
