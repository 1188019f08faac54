// `smarthost dkim keygen DOMAIN`: makes a DKIM private key (mode 0600, written atomically),
// prints the TXT record to publish and the [[dkim]] table to add. Works offline; the
// config is read only for data_dir, the default folder of the key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DNS_NAME, defaultSelector, keyKind, parsePrivateKey, recordText, txtRecordLine } from '../dkim/key.js';
import { writeSecretFile } from '../oauth/secret-file.js';
import { EXIT, UsageError, configOrReport } from './common.js';

export const TYPES = ['rsa2048', 'ed25519'] as const;

export const help = `usage: smarthost dkim keygen DOMAIN [--selector S] [--type rsa2048|ed25519] [-o KEYFILE] [--force]
Writes a new DKIM private key (mode 0600) and prints the DNS TXT record to
publish, SELECTOR._domainkey.DOMAIN IN TXT "v=DKIM1; k=…; p=…", and the
[[dkim]] table to add to smarthost.toml. Publish the record first, check it
with \`smarthost check\`, then add the table and reload (SIGHUP).
  --selector S     the selector (default s<year><month>, e.g. ${defaultSelector()})
  --type T         rsa2048 (default; every receiver verifies it) or ed25519
                   (RFC 8463; not all receivers verify it yet: add it beside RSA)
  -o, --output F   where to write the key (default data_dir/dkim/DOMAIN.SELECTOR.key)
  --force          replace an existing key file (its published record stops matching)
Exit 73 when KEYFILE exists and --force is not given.`;

export interface KeygenArgs { readonly config?: string; readonly selector?: string; readonly type?: string; readonly output?: string; readonly force: boolean }

function newKey(type: (typeof TYPES)[number]): string {
  const pair = type === 'ed25519' ? crypto.generateKeyPairSync('ed25519') : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The key file's path: -o, else data_dir/dkim/DOMAIN.SELECTOR.key (data_dir from the config). */
function keyFile(o: KeygenArgs, domain: string, selector: string): string | undefined {
  if (o.output !== undefined) return path.resolve(o.output);
  const config = configOrReport(o.config);
  return config && path.join(config.dataDir, 'dkim', `${domain}.${selector}.key`);
}

export function run(o: KeygenArgs, args: readonly string[]): number {
  const [sub, rawDomain, ...extra] = args;
  if (sub !== 'keygen' || rawDomain === undefined || extra.length) throw new UsageError(help);
  const domain = rawDomain.toLowerCase().replace(/\.$/, '');
  const selector = o.selector ?? defaultSelector();
  if (!DNS_NAME.test(domain)) throw new UsageError(`"${rawDomain}" is not a domain name`);
  if (!DNS_NAME.test(selector)) throw new UsageError(`--selector "${selector}" is not a DNS label (letters, digits, hyphens)`);
  const type = o.type ?? 'rsa2048';
  if (!(TYPES as readonly string[]).includes(type)) throw new UsageError(`--type must be ${TYPES.join(' or ')}, not "${type}"`);
  const file = keyFile(o, domain, selector);
  if (file === undefined) return EXIT.CONFIG;
  if (fs.existsSync(file) && !o.force) {
    process.stderr.write(`smarthost dkim: ${file} exists; it may be the key your published record matches.\n    fix: choose another --selector, or add --force to replace it\n`);
    return EXIT.CANTCREAT;
  }
  const pem = newKey(type as (typeof TYPES)[number]);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeSecretFile(file, pem.trimEnd());
  } catch (e) {
    process.stderr.write(`smarthost dkim: cannot write ${file}: ${(e as Error).message}\n`);
    return EXIT.CANTCREAT;
  }
  const parsed = parsePrivateKey(pem);
  if ('error' in parsed) throw new Error(`a generated key does not parse: ${parsed.error}`);
  process.stdout.write([
    `wrote ${file} (${keyKind(parsed.algorithm)}, ${parsed.bits} bits, mode 0600)`,
    `publish this TXT record in the DNS of ${domain}:`,
    `  ${txtRecordLine(domain, selector, recordText(parsed))}`,
    'then add to smarthost.toml, and reload (SIGHUP) or restart:',
    '  [[dkim]]',
    `  domain = "${domain}"`,
    `  selector = "${selector}"`,
    `  key_file = "${file}"`,
    '"smarthost check" shows whether the published record matches the key.',
    '',
  ].join('\n'));
  return EXIT.OK;
}
