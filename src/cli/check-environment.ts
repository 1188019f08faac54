// What `smarthost check` finds outside the config file: certificates and keys,
// secret files and their modes, the folders it must write, the ports it must
// bind, and settings that would send passwords in clear text. Each finding says
// what is wrong and how to fix it. Nothing is created: ports are bound for a
// moment and released, folders are tested with access(2).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Config, ListenConfig, LocalConfig, OAuthConfig, ServerTlsConfig, UpstreamConfig } from '../config/types.js';
import { AssertionKeyError, loadAssertionKey } from '../oauth/client-assertion.js';
import { controlSocketPath } from '../control/protocol.js';
import { parseAliases, type AliasTable } from '../local/aliases.js';
import { describeShape, postfixShape, shapeFix } from '../smtp/password-file.js';

/** A note is advice that changes no verdict (a check that could not run). */
export interface Finding { readonly level: 'error' | 'warning' | 'note'; readonly message: string; readonly fix: string }

export const error = (message: string, fix: string): Finding => ({ level: 'error', message, fix });
export const warning = (message: string, fix: string): Finding => ({ level: 'warning', message, fix });

const EXPIRY_WARNING_DAYS = 14;
const CAP_NET_BIND_SERVICE = 10n; // bit number in CapEff (linux/capability.h)
const setcapFix = (start: number) => "let node bind it: setcap 'cap_net_bind_service=+ep' $(readlink -f $(command -v node)), " +
  `or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit; or use port ${start} or above`;

export async function environmentFindings(config: Config): Promise<Finding[]> {
  return [
    ...serverTlsFindings(config.tls),
    ...upstreams(config).flatMap(({ label, up }) => upstreamFindings(up, label)),
    ...dataDirFindings(config.dataDir),
    ...logFileFindings(config.log.file),
    ...usersFileFindings(config),
    ...config.webhooks.flatMap(webhookSecretFindings),
    ...localFindings(config.local),
    ...config.listen.flatMap(listenPlaintextFindings),
    ...(await portFindings(config.listen, config.dataDir)),
  ];
}

function upstreams(config: Config): Array<{ label: string; up: UpstreamConfig }> {
  return [
    ...(config.relay ? [{ label: '[relay]', up: config.relay }] : []),
    ...config.routes.map((r) => ({ label: `[[route]] ${r.name}`, up: r })),
  ];
}

// ---- files: readable, and secret ones not readable by others

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** The file's bytes, or undefined after reporting why it cannot be read (a folder gives EISDIR). */
function readOrReport(file: string, what: string, out: Finding[]): Buffer | undefined {
  try { return fs.readFileSync(file); } catch (e) {
    out.push(error(`${what} ${file} cannot be read (${code(e)})`, 'check the path, and that the user smarthost runs as may read it'));
    return undefined;
  }
}

/** A warning when group or others may read `file`, which holds a secret. */
export function secretModeFindings(file: string, what: string, why: string): Finding[] {
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o044) === 0) return [];
  return [warning(`${what} ${file} is readable by other users (mode ${mode.toString(8)}); ${why}`, `chmod 600 ${file}`)];
}

// ---- certificates

interface PairNames { readonly cert: string; readonly key: string; readonly keySetting: string }

/** Both files readable, the key private, the key belonging to the certificate, and the certificate not (nearly) expired. */
function certKeyFindings(certFile: string, keyFile: string, names: PairNames): Finding[] {
  const out: Finding[] = [];
  const certPem = readOrReport(certFile, names.cert, out);
  const keyPem = readOrReport(keyFile, names.key, out);
  if (!certPem || !keyPem) return out;
  out.push(...secretModeFindings(keyFile, names.key, 'it is the private key'));
  try {
    const x = new crypto.X509Certificate(certPem);
    if (!x.checkPrivateKey(crypto.createPrivateKey(keyPem))) {
      out.push(error(`${keyFile} is not the key of ${names.cert} ${certFile}`, `point ${names.keySetting} at the private key that belongs to the certificate`));
    }
    out.push(...expiryFindings(x, certFile, names.cert));
  } catch (e) {
    out.push(error(`cannot parse ${certFile} / ${keyFile}: ${(e as Error).message}`, 'both must be PEM files'));
  }
  return out;
}

function expiryFindings(x: crypto.X509Certificate, file: string, what: string): Finding[] {
  const days = (new Date(x.validTo).getTime() - Date.now()) / 86_400_000;
  if (days < 0) return [error(`${what} ${file} expired on ${x.validTo}`, 'renew it (e.g. certbot renew) and restart smarthost')];
  if (days < EXPIRY_WARNING_DAYS) return [warning(`${what} ${file} expires in ${Math.floor(days)} days`, 'renew it soon')];
  return [];
}

function serverTlsFindings(tls: ServerTlsConfig): Finding[] {
  if (!tls.certificate || !tls.key) return [];
  return certKeyFindings(tls.certificate, tls.key, { cert: 'certificate', key: 'key', keySetting: '[tls] key' });
}

// ---- upstreams: credentials, client certificates, plaintext AUTH

/** [[webhook]] secret_file: the daemon will not start without it, and it must stay private. */
function webhookSecretFindings(w: Config['webhooks'][number]): Finding[] {
  const out: Finding[] = [];
  const text = readOrReport(w.secretFile, `secret_file of [[webhook]] ${w.url}`, out);
  if (!text) return out;
  if (text.toString('utf8').trim().length < 16) out.push(warning(`secret_file ${w.secretFile} of [[webhook]] ${w.url} holds fewer than 16 characters`, 'put a long random string in it: openssl rand -hex 32 > FILE'));
  return [...out, ...secretModeFindings(w.secretFile, 'secret_file', `anyone who reads it can forge events for ${w.url}`)];
}

function upstreamFindings(up: UpstreamConfig, label: string): Finding[] {
  return [...credentialFindings(up), ...clientTlsFindings(up, label), ...upstreamPlaintextFindings(up, label)];
}

function credentialFindings(up: UpstreamConfig): Finding[] {
  const out: Finding[] = [];
  const text = up.passwordFile ? readOrReport(up.passwordFile, 'password file', out) : undefined;
  if (up.passwordFile && text) {
    out.push(...secretModeFindings(up.passwordFile, 'password file', `it holds the password for ${up.url}`));
    // the first line is the password (smtp/upstream-policy.ts readCredentials); Postfix's sasl_passwd shape is the usual mistake
    const shape = postfixShape(text.toString('utf8').split(/\r?\n/, 1)[0]!, up.username);
    if (shape) {
      const other = shape.otherUser ? ` for another user than username "${up.username ?? ''}"` : '';
      out.push((shape.certain ? error : warning)(`${describeShape(up.passwordFile, shape)}${other}; upstream ${up.url} would reject the login (535)`, shapeFix(up.passwordFile)));
    }
  }
  if (up.passwordEnv && process.env[up.passwordEnv] === undefined) {
    out.push(warning(`environment variable ${up.passwordEnv} (password for ${up.url}) is not set here`, 'make sure it is set where smarthost runs'));
  }
  return [...out, ...(up.oauth ? oauthFindings(up.oauth, up) : [])];
}

/** The OAuth2 files: the client secret, the refresh token (delegated), or the assertion certificate and key (app-only). */
function oauthFindings(oauth: OAuthConfig, up: UpstreamConfig): Finding[] {
  const out: Finding[] = [];
  const secret = oauth.grant === 'refresh_token' ? oauth.clientSecretFile : oauth.credential.kind === 'secret' ? oauth.credential.file : undefined;
  if (secret && readOrReport(secret, 'client_secret_file', out)) {
    out.push(...secretModeFindings(secret, 'client_secret_file', `it holds the OAuth2 client secret for ${up.url}`));
  }
  if (oauth.grant === 'client_credentials') {
    if (oauth.credential.kind === 'certificate') out.push(...assertionFindings(oauth.credential.certificate, oauth.credential.key));
    return out;
  }
  if (fs.existsSync(oauth.refreshTokenFile)) {
    if (readOrReport(oauth.refreshTokenFile, 'refresh_token_file', out)) {
      out.push(...secretModeFindings(oauth.refreshTokenFile, 'refresh_token_file', `it signs in as ${up.username ?? 'the mailbox'}`));
    }
  } else {
    out.push(warning(`refresh_token_file ${oauth.refreshTokenFile} does not exist yet`, `run \`smarthost oauth login ${oauth.route}\` to sign in`));
  }
  return out;
}

/** The pair that signs client assertions: as delivery loads it (RSA, key of the certificate), then the key's mode and the certificate's expiry. */
function assertionFindings(cert: string, key: string): Finding[] {
  let loaded;
  try { loaded = loadAssertionKey(cert, key); } catch (e) {
    if (!(e instanceof AssertionKeyError)) throw e;
    return [error(e.message, e.fix)];
  }
  return [
    ...secretModeFindings(key, 'assertion_key', 'it is the private key the app signs in with'),
    ...expiryFindings(loaded.certificate, cert, 'assertion_certificate')
      .map((f) => ({ ...f, fix: 'make a new pair, upload the certificate to the app registration, then point assertion_certificate and assertion_key at it' })),
  ];
}

function clientTlsFindings(up: UpstreamConfig, label: string): Finding[] {
  const out: Finding[] = [];
  if (up.caFile) readOrReport(up.caFile, `ca_file of ${label}`, out);
  const { clientCertificate: cert, clientKey: key } = up;
  if (cert && key) {
    out.push(...certKeyFindings(cert, key, { cert: `client certificate of ${label}`, key: `client key of ${label}`, keySetting: `client_key of ${label}` }));
  } else if (cert) readOrReport(cert, `client certificate of ${label}`, out);
  else if (key && readOrReport(key, `client key of ${label}`, out)) out.push(...secretModeFindings(key, `client key of ${label}`, 'it is the private key'));
  return out;
}

/**
 * allow_plaintext_auth matters only where a password is sent and TLS may be
 * missing (smtp:// with tls none or may); there, a remote host sees it.
 */
function upstreamPlaintextFindings(up: UpstreamConfig, label: string): Finding[] {
  const tlsOptional = up.scheme === 'smtp' && (up.tls === 'none' || up.tls === 'may');
  if (!up.allowPlaintextAuth || !up.username || !tlsOptional || isLoopbackHost(up.host)) return [];
  return [warning(`${label} sets allow_plaintext_auth = true for ${up.host}: credentials would cross the network in clear text`,
    'use it only for a local stunnel on 127.0.0.1; for a remote host remove it and set tls = "verify"')];
}

/** The same for clients: AUTH before STARTTLS on an address other machines reach. */
function listenPlaintextFindings(l: ListenConfig): Finding[] {
  const tlsOptional = l.tls === 'none' || l.tls === 'starttls';
  if (!l.allowPlaintextAuth || l.auth === 'none' || !tlsOptional || isLoopbackHost(l.host)) return [];
  return [warning(`[[listen]] ${l.address} sets allow_plaintext_auth = true: client credentials would cross the network in clear text`,
    'use it only on a loopback address (e.g. 127.0.0.1 behind a local stunnel); here set tls = "starttls-required" or "implicit"')];
}

/** A loopback IP literal (127.0.0.0/8, ::1, ::ffff:127.x) or the name localhost; other names could resolve anywhere. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (h === 'localhost') return true;
  if (!ipaddr.isValid(h)) return false;
  const ip = ipaddr.process(h); // ::ffff:127.0.0.1 becomes 127.0.0.1
  return ip.range() === 'loopback';
}

// ---- folders smarthost writes

/** Why `dir`, or the nearest existing folder it would be created in, is not writable; undefined when it is. */
function unwritable(dir: string): string | undefined {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  try {
    if (!fs.statSync(d).isDirectory()) return 'ENOTDIR';
    fs.accessSync(d, fs.constants.W_OK | fs.constants.X_OK);
    return undefined;
  } catch (e) {
    return code(e);
  }
}

function dataDirFindings(dataDir: string): Finding[] {
  const why = unwritable(dataDir);
  return why ? [error(`data_dir ${dataDir} is not writable (${why})`, 'create it and give it to the user smarthost runs as')] : [];
}

/** [log] file: start creates the file, not its folder; an existing file must be writable. */
function logFileFindings(file: string | undefined): Finding[] {
  if (file === undefined) return [];
  let why: string | undefined;
  try {
    if (fs.existsSync(file)) fs.accessSync(file, fs.constants.W_OK);
    else if (!fs.existsSync(path.dirname(file))) why = `its folder ${path.dirname(file)} does not exist`;
    else fs.accessSync(path.dirname(file), fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    why = code(e);
  }
  return why ? [error(`[log] file ${file} cannot be written (${why}); start would refuse to run`, 'create the folder and give it (or the file) to the user smarthost runs as')] : [];
}

function usersFileFindings(config: Config): Finding[] {
  const file = config.auth.usersFile;
  if (!fs.existsSync(file)) {
    if (!config.listen.some((l) => l.auth !== 'none')) return [];
    return [warning(`listeners with AUTH but no users file ${file}`, 'add a user with `smarthost user add NAME`')];
  }
  const out: Finding[] = [];
  if (readOrReport(file, 'users file', out)) out.push(...secretModeFindings(file, 'users file', 'it holds password hashes'));
  return out;
}

// ---- [local]: aliases file and Maildir folder

/** The parsed aliases file, or the errno code that stopped reading it. */
export function readAliasesFile(file: string): AliasTable | { readonly error: string } {
  try { return parseAliases(fs.readFileSync(file, 'utf8')); } catch (e) { return { error: code(e) }; }
}

/** "/var/mail/{user}" -> "/var/mail"; "/srv/mail/u-{user}/Maildir" -> "/srv/mail": the folder every mailbox is made in. */
export function maildirBase(template: string): string {
  const fixed = template.slice(0, template.indexOf('{user}'));
  return fixed.endsWith('/') ? fixed.replace(/(.)\/+$/, '$1') : path.dirname(fixed);
}

function localFindings(local: LocalConfig): Finding[] {
  return [...(local.aliasesFile ? aliasesFileFindings(local.aliasesFile) : []), ...maildirFindings(local.maildir)];
}

function aliasesFileFindings(file: string): Finding[] {
  const table = readAliasesFile(file);
  if ('error' in table) return [error(`aliases file ${file} cannot be read (${table.error})`, 'check the path given in [local] aliases, and its permissions')];
  return table.problems.map((p) => warning(`${file}:${p.line}: ${p.message}`, `correct line ${p.line} of ${file}; smarthost rereads it by itself`));
}

function maildirFindings(template: string): Finding[] {
  const base = maildirBase(template);
  const why = unwritable(base);
  return why ? [error(`mailboxes cannot be made in ${base} (maildir = "${template}"): not writable (${why})`, `create ${base} and let the user smarthost runs as write in it`)] : [];
}

// ---- ports

/**
 * Whether this process may bind ports below ip_unprivileged_port_start. The
 * kernel asks only for CAP_NET_BIND_SERVICE, so root without it (a container
 * with --cap-drop) may not; the uid decides only where CapEff is unknown.
 */
export function canBindPrivileged(uid: number, capEffHex: string | undefined): boolean {
  if (capEffHex === undefined || !/^[0-9a-f]+$/i.test(capEffHex)) return uid === 0;
  return ((BigInt(`0x${capEffHex}`) >> CAP_NET_BIND_SERVICE) & 1n) === 1n;
}

export function isPrivilegedPort(port: number, unprivilegedStart = 1024): boolean {
  return port !== 0 && port < unprivilegedStart;
}

function capEff(): string | undefined {
  try { return /^CapEff:\s*([0-9a-f]+)$/im.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]; } catch { return undefined; }
}

function unprivilegedPortStart(): number {
  // Docker sets it to 0, which makes every port unprivileged.
  try {
    const n = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    return Number.isInteger(n) ? n : 1024;
  } catch { return 1024; }
}

/** Binds like the daemon does (server.listen(port, host)); resolves with the server held open, or the error. */
function bind(l: ListenConfig): Promise<net.Server | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', resolve);
    server.listen(l.port, l.host, () => resolve(server));
  });
}

/** Whether a smarthost runs on this data_dir: its control socket accepts a connection (nothing is sent). */
function controlAnswers(dataDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(controlSocketPath(dataDir));
    s.setTimeout(2000, () => { s.destroy(); resolve(false); });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * Binds every listener and holds them all until the end, so two [[listen]]
 * that would collide (0.0.0.0:25 and 127.0.0.1:25) show up as they would at start.
 */
async function portFindings(listen: readonly ListenConfig[], dataDir: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const held: Array<{ l: ListenConfig; server: net.Server }> = [];
  const uid = process.getuid?.() ?? 0;
  const privileged = canBindPrivileged(uid, capEff());
  const start = unprivilegedPortStart();
  let running: boolean | undefined;
  const smarthostRunning = async () => (running ??= await controlAnswers(dataDir));
  for (const l of listen) {
    if (isPrivilegedPort(l.port, start) && !privileged) {
      out.push(error(`address ${l.address} uses port ${l.port}, below ${start}, and this process (uid ${uid}) lacks CAP_NET_BIND_SERVICE to bind it`, setcapFix(start)));
      continue;
    }
    const r = await bind(l);
    if (r instanceof net.Server) { held.push({ l, server: r }); continue; }
    const other = held.find((h) => h.l.port === l.port)?.l;
    out.push(bindFinding(l, r, other, r.code === 'EADDRINUSE' && !other && await smarthostRunning()));
  }
  await Promise.all(held.map(({ server }) => new Promise((resolve) => server.close(resolve))));
  return out;
}

function bindFinding(l: ListenConfig, e: NodeJS.ErrnoException, overlapping: ListenConfig | undefined, ourself: boolean): Finding {
  const a = l.address;
  switch (e.code) {
    case 'EADDRINUSE':
      if (overlapping) return error(`address ${a} overlaps [[listen]] ${overlapping.address}, which already takes port ${l.port}`, 'remove one of the two [[listen]] sections (0.0.0.0 and :: already cover every address)');
      if (ourself) return warning(`address ${a} is already in use: smarthost itself is running and holds it`, 'nothing to fix while it runs; stop it before starting another smarthost on this data_dir');
      return error(`address ${a} is already in use`, `find the program that holds it with: ss -ltnp 'sport = :${l.port}', then stop it or choose another port`);
    case 'EACCES':
      return error(`address ${a}: permission denied (EACCES)`, 'a security policy (SELinux, AppArmor, a container) forbids this port; allow it there or choose another port');
    case 'EADDRNOTAVAIL':
      return error(`address ${a} is not an address of this machine`, 'use one that `ip -brief address` lists, 127.0.0.1, or 0.0.0.0 for all');
    default:
      return error(`cannot listen on ${a} (${e.code ?? e.message})`, 'check the host part of the address');
  }
}
