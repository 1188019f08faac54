// What `smarthost check` says about each [[dkim]]: the key file's mode and size, and whether
// SELECTOR._domainkey.DOMAIN publishes this key, asked of the resolver MX delivery uses
// ([mx] nameservers, or the system's). DNS that cannot be reached is a warning, never an error.
import type { Config, DkimConfig } from '../config/types.js';
import { keyKind, recordText, RSA_GOOD_BITS, txtRecordLine } from '../dkim/key.js';
import { publishedKey, recordName, type TxtResolver } from '../dkim/published.js';
import { resolverFor } from '../smtp/mx.js';
import { error, secretModeFindings, warning, type Finding } from './check-environment.js';

export interface DkimCheck { readonly findings: readonly Finding[]; readonly lines: readonly string[] }

function keyFindings(d: DkimConfig): Finding[] {
  const out = secretModeFindings(d.keyFile, 'DKIM key', `anyone who reads it can sign mail as ${d.domain}`);
  if (d.algorithm === 'rsa-sha256' && d.bits < RSA_GOOD_BITS) {
    out.push(warning(`DKIM key ${d.keyFile} (${d.domain}, selector ${d.selector}) has ${d.bits} bits; RFC 8301 asks for at least ${RSA_GOOD_BITS}`,
      `make a new one with "smarthost dkim keygen ${d.domain}" (a new selector), publish it, then switch key_file and selector`));
  }
  return out;
}

async function one(d: DkimConfig, resolver: TxtResolver): Promise<{ findings: Finding[]; line: string }> {
  const findings = keyFindings(d);
  const name = recordName(d.domain, d.selector);
  const publish = `publish: ${txtRecordLine(d.domain, d.selector, recordText(d))}`;
  const p = await publishedKey(resolver, d.domain, d.selector, d.key);
  let state: string;
  switch (p.kind) {
    case 'match': state = 'published, matches the key'; break;
    case 'different':
      state = 'published with a DIFFERENT key';
      findings.push(error(`DKIM record ${name} holds another key (p=${p.found}) than ${d.keyFile}: every signature by it fails`,
        `${publish} (or point key_file at the key that record belongs to)`));
      break;
    case 'revoked':
      state = 'revoked in DNS (empty p=)';
      findings.push(error(`DKIM record ${name} revokes its key (empty p=): every signature by it fails`, `${publish}, or use a new selector`));
      break;
    case 'missing':
      state = 'NOT published';
      findings.push(warning(`DKIM record ${name} is not published: receivers cannot verify the signatures of ${d.domain}`, publish));
      break;
    case 'unknown':
      state = `could not check (${p.detail})`;
      findings.push(warning(`could not check DKIM record ${name}: DNS did not answer (${p.detail})`,
        'run check where DNS works, or check [mx] nameservers; meanwhile: dig TXT ' + name));
      break;
  }
  return { findings, line: `  dkim ${d.domain} selector ${d.selector} (${keyKind(d.algorithm)} ${d.bits}): ${state}` };
}

export async function dkimChecks(config: Config, resolver: TxtResolver = resolverFor(config.mx.nameservers)): Promise<DkimCheck> {
  if (config.dkim.length === 0) return { findings: [], lines: ['  dkim none (mail leaves unsigned)'] };
  const results = await Promise.all(config.dkim.map((d) => one(d, resolver)));
  return { findings: results.flatMap((r) => r.findings), lines: results.map((r) => r.line) };
}
