// ImportedConfig -> smarthost.toml text, in a fixed order with a comment above
// every section naming the old setting it came from, so the same set-up always
// gives the same file (diffable, reviewable). Written by hand rather than with a
// TOML library: the file is meant to be read and edited, and a serializer would
// drop the comments. Strings go out as JSON strings, which are valid TOML basic
// strings; the caller parses the result back through config/load.ts.
import type { ImportedConfig, ImportedListen, ImportedUpstream } from './model.js';
import { secretFileName } from './model.js';

const str = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(str).join(', ')}]`;
const key = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : str(k));
/** "# from: a\n# and b" for a text that may span lines. */
const comment = (text: string) => text.split('\n').map((l) => `# ${l}`.trimEnd());

function listenLines(l: ImportedListen): string[] {
  return [
    ...comment(l.from), '[[listen]]',
    `address = ${str(l.address)}`,
    `tls = ${str(l.tls)}`,
    `auth = ${str(l.auth)}`,
    `trusted_networks = ${list(l.trustedNetworks)}`,
    ...(l.allowPlaintextAuth ? ['allow_plaintext_auth = true'] : []),
    '',
  ];
}

function upstreamLines(u: ImportedUpstream, header: string): string[] {
  const opt = (k: string, v: string | undefined) => (v === undefined ? [] : [`${k} = ${str(v)}`]);
  return [
    ...comment(u.from), header,
    ...opt('name', u.name),
    ...(u.domains?.length ? [`domains = ${list(u.domains)}`] : []),
    ...(u.senders?.length ? [`senders = ${list(u.senders)}`] : []),
    `url = ${str(u.url)}`,
    `tls = ${str(u.tls)}`,
    ...opt('username', u.username),
    ...(u.password !== undefined ? [`password_file = ${str(secretFileName(u))}   # beside this file, mode 0600`] : []),
    ...opt('ca_file', u.caFile),
    ...opt('client_certificate', u.clientCertificate),
    ...opt('client_key', u.clientKey),
    ...(u.mechanisms?.length ? [`mechanisms = ${list(u.mechanisms)}`] : []),
    ...(u.allowPlaintextAuth ? ['allow_plaintext_auth = true'] : []),
    '',
  ];
}

function localLines(c: ImportedConfig): string[] {
  return [
    ...comment(c.local.from), '[local]',
    `domains = ${list(c.local.domains)}`,
    ...(c.local.aliases !== undefined ? [`aliases = ${str(c.local.aliases)}   # read directly: no newaliases step`] : []),
    '',
  ];
}

/** [rewrite.senders] as a table, one entry a line. */
function rewriteLines(c: ImportedConfig): string[] {
  const active = Object.entries(c.rewrite?.senders ?? {}).map(([k, v]) => `${key(k)} = ${str(v)}`);
  return active.length ? [...comment(c.rewrite!.from), '[rewrite.senders]', ...active, ''] : [];
}

export function writeToml(c: ImportedConfig, header: string): string {
  const lines = [
    ...comment(header), '',
    ...(c.hostname ? [`hostname = ${str(c.hostname.value)}   # ${c.hostname.from}`] : ['# hostname: not set, the system\'s host name is used (as Postfix/Sendmail did)']),
    `data_dir = ${str(c.dataDir)}`, '',
    ...c.listen.flatMap(listenLines),
    ...(c.serverTls ? [...comment(c.serverTls.from), '[tls]', `certificate = ${str(c.serverTls.certificate)}`, `key = ${str(c.serverTls.key)}`, ''] : []),
    ...(c.relay ? upstreamLines(c.relay, '[relay]') : ['# no [relay]: mail for other domains goes to their MX hosts', '']),
    ...c.routes.flatMap((r) => upstreamLines(r, '[[route]]')),
    ...c.routeHints.flatMap((h) => [...comment(h), '']),
    ...localLines(c),
    ...rewriteLines(c),
    ...(c.mxTls ? [...comment(c.mxTls.from), '[mx]', `tls = ${str(c.mxTls.tls)}`, ''] : []),
    ...(c.messageSize ? [...comment(c.messageSize.from), '[limits]', `message_size = ${c.messageSize.bytes}   # bytes`, ''] : []),
  ];
  return lines.join('\n').replace(/\n+$/, '\n');
}

/** The secret files to write beside the TOML: file name -> password (the password alone, one line). */
export function secretFiles(c: ImportedConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const u of [...(c.relay ? [c.relay] : []), ...c.routes]) {
    if (u.password === undefined) continue;
    const name = secretFileName(u);
    if (out.has(name)) throw new Error(`two upstreams share the secret file ${name}`);
    out.set(name, u.password + '\n');
  }
  return out;
}
