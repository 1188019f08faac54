// How to talk to one upstream: the TLS level as nodemailer connection options,
// and where the SASL password comes from. TLS is an ordered level
// (none < may < encrypt < verify); only `may` ever continues in plaintext.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';
import type { MxConfig, OAuthConfig, OutboundTls, TlsVersion, UpstreamConfig } from '../config/types.js';
import type { CachedPolicy } from '../mta-sts/cache.js';
import { sharedAppTokenSource } from '../oauth/app-token-source.js';
import { sharedTokenSource, type AccessTokens } from '../oauth/token-source.js';
import { postfixShape, type PostfixShape } from './password-file.js';

/** One concrete address to connect to; `host` is the name for SNI, certificate checks and logs. */
export interface Peer { readonly host: string; readonly ip: string; readonly port: number }

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** "password_file /etc/x" or "password_env NAME", never the password */
  readonly source: string;
  /** The password file's first line has the shape of a Postfix sasl_passwd line or "user:password". */
  readonly postfix?: { readonly file: string; readonly shape: PostfixShape };
}

export interface Policy {
  /** For reasons: "[relay]", "route corp", "MX of example.net". */
  readonly label: string;
  /** Direct MX delivery: no url whose scheme could be wrong, no credentials; its knobs are [mx]'s. */
  readonly mx: boolean;
  readonly implicitTls: boolean;
  readonly tls: OutboundTls;
  readonly minTlsVersion: TlsVersion;
  /** ca_file, client_certificate and client_key, as TLS options. */
  readonly tlsFiles: () => TlsFiles;
  readonly timeoutMs: number;
  readonly mechanisms: readonly string[];
  readonly allowPlaintextAuth: boolean;
  /** Reads the password now (so a changed file applies to the next connection); throws a plain-language Error. */
  readonly credentials?: () => Credentials;
  /** auth = "oauth2" instead of `credentials`: where tokens come from, and which mailbox a message logs in as. */
  readonly oauth?: OAuthLoginPolicy;
  /** MX delivery to a domain with an MTA-STS policy in mode enforce or testing. */
  readonly sts?: CachedPolicy;
}

export interface OAuthLoginPolicy {
  /** One source per mailbox (delegated) or per app (app-only), shared by all connections. */
  readonly tokens: () => AccessTokens;
  /** The mailbox to log in as for mail from `sender` (after [rewrite]); connections are never shared between mailboxes. */
  readonly mailbox: (sender: string) => string;
}

export interface TlsFiles { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer }

/**
 * The files are read at the first connection of a configuration and kept until a reload builds
 * new policies, not read per connection. A read that fails (the file is missing or unreadable)
 * throws, so that connection fails with the reason, and is tried again at the next one.
 */
function tlsFilesOf(u: UpstreamConfig): () => TlsFiles {
  let files: TlsFiles | undefined;
  return () => files ??= {
    ...(u.caFile ? { ca: fs.readFileSync(u.caFile) } : {}),
    ...(u.clientCertificate ? { cert: fs.readFileSync(u.clientCertificate) } : {}),
    ...(u.clientKey ? { key: fs.readFileSync(u.clientKey) } : {}),
  };
}
const NO_FILES = (): TlsFiles => ({});

export const peerLabel = (p: Peer): string => `${p.host}[${p.ip}]:${p.port}`;

export function upstreamPolicy(label: string, u: UpstreamConfig): Policy {
  return {
    label, mx: false, implicitTls: u.scheme === 'smtps', tls: u.tls, minTlsVersion: u.minTlsVersion, timeoutMs: u.timeoutMs,
    mechanisms: u.mechanisms, allowPlaintextAuth: u.allowPlaintextAuth,
    tlsFiles: tlsFilesOf(u),
    ...(u.username !== undefined && !u.oauth ? { credentials: () => readCredentials(u) } : {}),
    ...(u.username !== undefined && u.oauth ? { oauth: oauthPolicy(u.oauth, u.username) } : {}),
  };
}

function oauthPolicy(o: OAuthConfig, username: string): OAuthLoginPolicy {
  if (o.grant === 'refresh_token') {
    return { tokens: () => sharedTokenSource(o, username, { warn: (m) => process.stderr.write(`smarthost: ${m}\n`) }), mailbox: () => username };
  }
  // login_as = "sender": the envelope sender's own mailbox; bounces (null sender) log in as username
  return { tokens: () => sharedAppTokenSource(o), mailbox: (sender) => (o.loginAs === 'sender' && sender ? sender : username) };
}

export function mxPolicy(domain: string, mx: MxConfig): Policy {
  return { label: `MX of ${domain}`, mx: true, implicitTls: false, tls: mx.tls, minTlsVersion: mx.minTlsVersion, timeoutMs: mx.timeoutMs, mechanisms: [], allowPlaintextAuth: false, tlsFiles: NO_FILES };
}

/**
 * A domain's MX policy under its MTA-STS policy. enforce: verified TLS (chain and the MX host's
 * name, RFC 8461 §4.2) whatever [mx] tls says, never plaintext, and TLS 1.2 or later as for any
 * verified upstream; testing: [mx] tls unchanged, the session is checked after it opened.
 */
export function stsPolicy(base: Policy, sts: CachedPolicy): Policy {
  return sts.mode === 'enforce' ? { ...base, tls: 'verify', minTlsVersion: 'TLSv1.2', sts } : { ...base, sts };
}

function readCredentials(u: UpstreamConfig): Credentials {
  const username = u.username!;
  if (u.passwordEnv !== undefined) {
    const password = process.env[u.passwordEnv];
    if (password === undefined || password === '') throw new Error(`password_env ${u.passwordEnv} is not set in smarthost's environment`);
    return { username, password, source: `password_env ${u.passwordEnv}` };
  }
  const file = u.passwordFile!;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read password_file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const password = text.split(/\r?\n/, 1)[0]!; // the first line as written: editors add a final newline, some people a comment
  if (!password) throw new Error(`password_file ${file} is empty`);
  const postfix = postfixShape(password, username);
  return { username, password, source: `password_file ${file}`, ...(postfix ? { postfix: { file, shape: postfix } } : {}) };
}

/** nodemailer options for one connection attempt. */
export function connectionOptions(peer: Peer, policy: Policy, ehloName: string, opts: { plaintextRetry?: boolean } = {}): SMTPConnectionOptions {
  const verify = policy.tls === 'verify';
  const tlsOptions: NonNullable<SMTPConnectionOptions['tls']> = {
    rejectUnauthorized: verify,
    checkServerIdentity: namesInError,
    minVersion: policy.minTlsVersion,
    ...(net.isIP(peer.host) ? {} : { servername: peer.host }),
    ...policy.tlsFiles(),
  };
  const mandatory = policy.tls === 'encrypt' || verify;
  return {
    host: peer.ip, port: peer.port, name: ehloName,
    secure: policy.implicitTls,
    ...(net.isIP(peer.host) ? {} : { servername: peer.host }),
    requireTLS: !policy.implicitTls && mandatory,
    opportunisticTLS: policy.tls === 'may',
    ignoreTLS: policy.tls === 'none' || opts.plaintextRetry === true,
    tls: tlsOptions,
    connectionTimeout: Math.min(30_000, policy.timeoutMs),   // Postfix smtp_connect_timeout
    greetingTimeout: policy.timeoutMs,
    socketTimeout: policy.timeoutMs,
    socketCloseTimeout: 1000,
    dnsTimeout: policy.timeoutMs,
    allowInternalNetworkInterfaces: true,
  };
}

/** Node's own check, with the names the certificate does carry in the message (Node lists only one kind). */
function namesInError(host: string, cert: tls.PeerCertificate): Error | undefined {
  const err = tls.checkServerIdentity(host, cert);
  if (err) err.message = `Hostname/IP ${host} does not match the certificate's names: ${cert.subjectaltname || `CN=${cert.subject?.CN ?? '(none)'}`}`;
  return err;
}
