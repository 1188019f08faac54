// Test certificates made with the openssl CLI, once per process: a CA, leaves it
// signed (valid, expired, wrong name, client) and a self-signed leaf, as PEM
// strings and files. `openssl ca` is used because it is the one tool here that
// takes explicit validity dates (x509 -not_before needs OpenSSL 3.4), and an
// expired certificate needs a notAfter in the past. EC P-256 keeps it fast.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CertPair { cert: string; key: string; certFile: string; keyFile: string }
export interface TestCerts {
  /** Path of the CA certificate that signed valid, expired, wrongName and client. */
  caFile: string;
  ca: string;
  /** SAN DNS:localhost, DNS:upstream.test, IP:127.0.0.1, IP:::1; valid now. */
  valid: CertPair;
  /** The same names, valid 2020-01-01 to 2021-01-01. */
  expired: CertPair;
  /** The valid names, but self-signed (not from the CA). */
  selfSigned: CertPair;
  /** DNS:wrong.example only. */
  wrongName: CertPair;
  /** extendedKeyUsage clientAuth, CN "smarthost test client". */
  client: CertPair;
}

const NAMES = 'DNS:localhost,DNS:upstream.test,IP:127.0.0.1,IP:::1';

// Our own config, so the system openssl.cnf (and its defaults) play no part.
const CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${NAMES}
[wrong]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const cache = new Map<string, TestCerts>();

/** Generates (or returns the cached) certificates; with no `dir`, a temp dir removed at exit. */
export function testCerts(dir?: string): TestCerts {
  const key = dir ?? '';
  const hit = cache.get(key);
  if (hit) return hit;
  const out = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-certs-'));
  if (dir) fs.mkdirSync(dir, { recursive: true });
  else process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  const certs = generate(out);
  cache.set(key, certs);
  return certs;
}

function generate(dir: string): TestCerts {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw new Error(`openssl ${args.join(' ')} failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
    }
  };
  fs.writeFileSync(file('openssl.cnf'), CONFIG);
  fs.writeFileSync(file('index.txt'), '');
  fs.writeFileSync(file('serial'), '1000\n');
  const cnf = ['-config', 'openssl.cnf'];
  const pair = (name: string): CertPair => ({
    cert: fs.readFileSync(file(`${name}.pem`), 'utf8'), key: fs.readFileSync(file(`${name}.key`), 'utf8'),
    certFile: file(`${name}.pem`), keyFile: file(`${name}.key`),
  });
  const selfSigned = (name: string, cn: string, ext: string) =>
    openssl('req', ...cnf, '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${cn}`, '-days', '3650', '-extensions', ext);
  const signed = (name: string, cn: string, ext: string, dates: string[]) => {
    openssl('req', ...cnf, '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('ca', ...cnf, '-batch', '-notext', '-cert', 'ca.pem', '-keyfile', 'ca.key',
      '-in', `${name}.csr`, '-out', `${name}.pem`, '-extensions', ext, ...dates);
    return pair(name);
  };
  const now = ['-days', '3650'];
  selfSigned('ca', 'smarthost test CA', 'ca_ext');
  selfSigned('self-signed', 'upstream.test', 'server');
  return {
    caFile: file('ca.pem'),
    ca: fs.readFileSync(file('ca.pem'), 'utf8'),
    valid: signed('valid', 'upstream.test', 'server', now),
    expired: signed('expired', 'upstream.test', 'server', ['-startdate', '20200101000000Z', '-enddate', '20210101000000Z']),
    selfSigned: pair('self-signed'),
    wrongName: signed('wrong-name', 'wrong.example', 'wrong', now),
    client: signed('client', 'smarthost test client', 'client', now),
  };
}

/**
 * A server certificate for `names` (DNS names) signed by the test CA, e.g. for an HTTPS peer such
 * as an MTA-STS policy host (mta-sts.DOMAIN). Cached per set of names.
 */
export function issueCert(names: readonly string[]): CertPair {
  const key = names.join(',');
  const hit = issued.get(key);
  if (hit) return hit;
  const ca = testCerts();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-leaf-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (n: string) => path.join(dir, n);
  fs.writeFileSync(file('ext.cnf'), `[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${names.map((n) => `DNS:${n}`).join(',')}\n`);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-new', ...EC, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`);
  run('x509', '-req', '-in', 'leaf.csr', '-CA', ca.caFile, '-CAkey', ca.caFile.replace(/\.pem$/, '.key'), '-set_serial', String(Date.now()),
    '-days', '3650', '-extfile', 'ext.cnf', '-extensions', 'ext', '-out', 'leaf.pem');
  const pair = { cert: fs.readFileSync(file('leaf.pem'), 'utf8'), key: fs.readFileSync(file('leaf.key'), 'utf8'), certFile: file('leaf.pem'), keyFile: file('leaf.key') };
  issued.set(key, pair);
  return pair;
}
const issued = new Map<string, CertPair>();
