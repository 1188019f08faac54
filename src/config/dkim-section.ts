// [[dkim]] tables -> DkimConfig: domain, selector, the key file read and parsed here (once per
// config load, so a bad key is a problem with its file and line, and a reload with a new key
// file takes effect), and the header fields to sign. Several entries for one domain all sign:
// rotation and dual RSA + Ed25519 signing are both "two entries" (README, DKIM).
import fs from 'node:fs';
import { DNS_NAME, parsePrivateKey } from '../dkim/key.js';
import { isTable, Section, type Problems } from './reader.js';
import type { DkimConfig } from './types.js';

/**
 * Signed when present (each instance); From, Reply-To, Subject, To and Cc are also oversigned
 * (dkim/signer.ts OVERSIGNED). Close to mailauth's and rspamd's defaults; List-Unsubscribe-Post
 * because RFC 8058 §4 requires it signed for one-click unsubscribe. Received, Return-Path and
 * DKIM-Signature are not: they change in transit.
 */
export const DEFAULT_SIGNED_HEADERS = Object.freeze([
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc', 'mime-version',
  'content-type', 'content-transfer-encoding', 'content-id', 'content-description',
  'resent-date', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-message-id',
  'in-reply-to', 'references', 'list-id', 'list-help', 'list-unsubscribe', 'list-unsubscribe-post',
  'list-subscribe', 'list-post', 'list-owner', 'list-archive',
]);

/** Header fields that change on the way: signing them would break the signature at the next hop. */
const NEVER_SIGNED = ['received', 'return-path', 'dkim-signature', 'arc-seal', 'arc-message-signature', 'arc-authentication-results', 'authentication-results'];
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
const KEYS = ['domain', 'selector', 'key_file', 'headers'];

function readHeaders(s: Section): readonly string[] {
  const given = s.strings('headers', DEFAULT_SIGNED_HEADERS).map((h) => h.toLowerCase());
  if (!s.has('headers') || s.isBad('headers')) return DEFAULT_SIGNED_HEADERS;
  for (const h of given) {
    if (!FIELD_NAME.test(h)) s.problem('headers', `"${h}" in ${s.at('headers')} is not a header field name`, 'write names such as "Subject", without the colon');
    else if (NEVER_SIGNED.includes(h)) s.problem('headers', `${s.at('headers')} lists "${h}", which changes in transit: every signature would fail`, `remove "${h}"`);
  }
  if (!given.includes('from')) s.problem('headers', `${s.at('headers')} has no "From"; RFC 6376 §5.4 requires it signed`, 'add "From" to the list');
  return Object.freeze([...new Set(given)]);
}

/** The key file read and parsed, or a problem naming key_file's line. */
function readKey(s: Section, keyFile: string): Pick<DkimConfig, 'key' | 'algorithm' | 'bits'> | undefined {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(keyFile);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const domain = typeof s.table['domain'] === 'string' ? s.table['domain'] : 'DOMAIN';
    s.problem('key_file', `${s.at('key_file')}: ${keyFile} cannot be read (${code})`, code === 'ENOENT'
      ? `create it with "smarthost dkim keygen ${domain}", or correct the path`
      : 'let the user smarthost runs as read it (chown, chmod 600)');
    return undefined;
  }
  const parsed = parsePrivateKey(pem);
  if ('error' in parsed) {
    s.problem('key_file', `${s.at('key_file')}: ${keyFile} cannot sign: ${parsed.error}`, 'point key_file at an unencrypted PEM private key (RSA of 2048 bits, or Ed25519), e.g. one from "smarthost dkim keygen"');
    return undefined;
  }
  return parsed;
}

function readOne(s: Section, abs: (p: string) => string): DkimConfig | undefined {
  const domain = s.string('domain')?.toLowerCase().replace(/\.$/, '');
  if (domain === undefined && !s.misspells('domain')) s.problem('domain', `${s.path} has no domain`, 'add domain = "example.com" (the From: domain to sign for)');
  else if (domain !== undefined && !DNS_NAME.test(domain)) s.problem('domain', `${s.at('domain')} = "${domain}" is not a domain name`, 'write domain = "example.com"');
  const selector = s.string('selector');
  if (selector === undefined && !s.misspells('selector')) s.problem('selector', `${s.path} has no selector`, 'add selector = "s2026" (the name before ._domainkey in DNS)');
  else if (selector !== undefined && !DNS_NAME.test(selector)) s.problem('selector', `${s.at('selector')} = "${selector}" is not a DNS label`, 'write selector = "s2026" (letters, digits, hyphens)');
  const file = s.string('key_file');
  if (file === undefined && !s.misspells('key_file')) s.problem('key_file', `${s.path} has no key_file`, `add key_file = "/etc/smarthost/dkim/${domain ?? 'example.com'}.key" (made by "smarthost dkim keygen")`);
  const headers = readHeaders(s);
  s.finish(KEYS);
  const key = file === undefined ? undefined : readKey(s, abs(file));
  if (!domain || !selector || !file || !key || s.isBad('domain') || s.isBad('selector') || s.isBad('headers')) return undefined;
  return Object.freeze({ domain, selector, keyFile: abs(file), ...key, headers });
}

/** Every [[dkim]] table; a domain + selector pair listed twice is a problem (the second would add the same signature). */
export function readDkim(raw: unknown, problems: Problems, abs: (p: string) => string): readonly DkimConfig[] {
  if (raw === undefined) return Object.freeze([]);
  if (!Array.isArray(raw)) {
    problems.add('dkim', 'dkim must be written as [[dkim]] tables', 'write [[dkim]] then domain, selector and key_file below it');
    return Object.freeze([]);
  }
  const out: DkimConfig[] = [];
  raw.forEach((t, i) => {
    if (!isTable(t)) return problems.add(`dkim[${i}]`, `dkim[${i}] must be a table`, 'write [[dkim]] sections');
    const d = readOne(new Section(t, `dkim[${i}]`, problems), abs);
    if (!d) return;
    if (out.some((o) => o.domain === d.domain && o.selector === d.selector)) {
      return problems.add(`dkim[${i}].selector`, `domain ${d.domain} with selector ${d.selector} is listed twice`, 'remove one of the [[dkim]] sections, or give the new key its own selector');
    }
    out.push(d);
  });
  return Object.freeze(out);
}
