// The validated, frozen configuration. Fields already have the types the code
// uses (milliseconds, bytes, parsed URLs and CIDRs); modules receive only
// their own slice of it.
import type { KeyObject } from 'node:crypto';
import type { IPv4, IPv6 } from 'ipaddr.js';
import type { Rate } from './units.js';

export type ListenTls = 'none' | 'starttls' | 'starttls-required' | 'implicit';
export type ListenAuth = 'none' | 'optional' | 'required';
export type OutboundTls = 'none' | 'may' | 'encrypt' | 'verify';

export interface Cidr { readonly text: string; readonly range: readonly [IPv4 | IPv6, number] }

export interface ListenConfig {
  readonly address: string;         // as written, e.g. "127.0.0.1:2525"
  readonly host: string;
  readonly port: number;
  readonly tls: ListenTls;
  readonly auth: ListenAuth;
  readonly trustedNetworks: readonly Cidr[];
  readonly allowPlaintextAuth: boolean;
  /** Postfix postscreen's pregreet test for clients outside trusted_networks; 0 = off. */
  readonly pregreetMs: number;
}

export interface ServerTlsConfig {
  readonly certificate?: string;
  readonly key?: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface AuthConfig {
  readonly usersFile: string;
  /** AUTH PLAIN may name another identity to act as (authzid); refused (535) unless true. */
  readonly allowAuthzid: boolean;
  /** "(Authenticated sender: NAME)" in the Received header (Postfix smtpd_sasl_authenticated_header). */
  readonly authenticatedHeader: boolean;
}

export interface UpstreamConfig {
  readonly url: string;
  readonly scheme: 'smtp' | 'smtps';
  readonly host: string;
  readonly port: number;
  readonly tls: OutboundTls;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly passwordEnv?: string;
  readonly caFile?: string;
  readonly clientCertificate?: string;
  readonly clientKey?: string;
  readonly mechanisms: readonly string[];
  readonly allowPlaintextAuth: boolean;
  readonly minTlsVersion: TlsVersion;
  /** Most connections open to this upstream at once. */
  readonly concurrency: number;
  /** How long to wait for the connection, each reply, and the message transfer to make progress. */
  readonly timeoutMs: number;
  /** auth = "oauth2": log in as `username` with an access token instead of a password. */
  readonly oauth?: OAuthConfig;
  /**
   * `url` as a list: one provider's hosts, tried in order within one attempt, all with this
   * upstream's tls and credentials. The first is url/scheme/host/port above; absent = just that one.
   */
  readonly urls?: readonly UpstreamUrl[];
  /** Tried in the same attempt when every `urls` entry deferred (Postfix smtp_fallback_relay); same tls and credentials. */
  readonly fallbackUrls?: readonly UpstreamUrl[];
  /** At most `count` messages per `windowMs`; absent = no limit. Mail over it waits in the queue. */
  readonly rate?: Rate;
  /** A cached connection carries at most this many messages (absent = DEFAULTS.reuseMessages). */
  readonly reuseMessages?: number;
  /** ... and is not reused once this old, counted from its opening (absent = DEFAULTS.reuseTimeMs). */
  readonly reuseTimeMs?: number;
}

/** One parsed upstream URL. */
export interface UpstreamUrl {
  readonly url: string;
  readonly scheme: 'smtp' | 'smtps';
  readonly host: string;
  readonly port: number;
}

/** OAuth2 (XOAUTH2/OAUTHBEARER) sign-in to an upstream; URLs already filled in from `provider`. */
export interface OAuthConfig {
  /** The name `smarthost oauth login` takes: "relay" or the [[route]]'s name. */
  readonly route: string;
  readonly provider?: 'google' | 'microsoft';
  readonly tokenUrl: string;
  /** RFC 8628 device authorization endpoint, for `smarthost oauth login`. */
  readonly deviceUrl?: string;
  readonly clientId: string;
  /** Absent for public clients (no secret). */
  readonly clientSecretFile?: string;
  readonly refreshTokenFile: string;
  readonly scope?: string;
}

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** Direct delivery to the recipient domain's MX hosts (no route, no [relay]). */
export interface MxConfig {
  readonly port: number;
  readonly tls: OutboundTls;
  /** "ip" or "ip:port"; empty = the system resolver (/etc/resolv.conf). */
  readonly nameservers: readonly string[];
  readonly concurrency: number;
  readonly minTlsVersion: TlsVersion;
  readonly timeoutMs: number;
}

export interface RouteConfig extends UpstreamConfig {
  readonly name: string;
  readonly domains: readonly string[];
  readonly senders: readonly string[];
}

export interface LocalConfig {
  readonly domains: readonly string[];
  readonly maildir: string;
  readonly aliases: Readonly<Record<string, readonly string[]>>;
  readonly aliasesFile?: string;
  /** Mailbox owners; absent means the accounts in /etc/passwd. root and postmaster always exist. */
  readonly users?: readonly string[];
}

export interface RewriteConfig { readonly senders: Readonly<Record<string, string>> }

export interface QueueConfig {
  readonly lifetimeMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly delayWarningMs: number;
  /** Accept and store mail but start no delivery until `smarthost queue flush` (Exim queue_only, Postfix defer_transports). */
  readonly deferDelivery: boolean;
}

export interface LimitsConfig {
  readonly messageSize: number;
  readonly recipients: number;
  readonly connections: number;
  readonly connectionsPerIp: number;
  readonly authFailures: Rate;
  /** Connection attempts per client address over time, trusted networks aside; absent: no limit. */
  readonly connectionRate?: Rate;
  /** Client networks that limits.auth_failures never blocks. */
  readonly authFailuresExempt: readonly Cidr[];
  readonly lineLength: number;
  readonly idleTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly errors: number;
  /** NOOP, VRFY, ETRN and RSET a session may send before each one counts as an error (Postfix smtpd_junk_command_limit). */
  readonly junkCommands: number;
  readonly hops: number;
  /** Largest header section taken (Postfix header_size_limit); larger gets 552 5.3.4. */
  readonly headerSize: number;
}

/** The Prometheus scrape listener; absent from Config means none is opened. */
export interface MetricsConfig {
  readonly address: string;         // as written, e.g. "127.0.0.1:9325"
  readonly host: string;
  readonly port: number;
}

/** One [[dkim]]: mail whose From: domain is `domain` leaves with a signature by this key. */
export interface DkimConfig {
  /** Lower case, without a trailing dot; matched exactly against the From: address's domain. */
  readonly domain: string;
  readonly selector: string;
  readonly keyFile: string;
  /** Read and parsed once per config load (start, SIGHUP, `check`). */
  readonly key: KeyObject;
  /** From the key: RSA (at least 1024 bits) or Ed25519. */
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  readonly bits: number;
  /** Header fields to sign, lower case; `from` is always among them. */
  readonly headers: readonly string[];
}

export interface LogConfig {
  readonly file?: string;
  readonly format: 'postfix' | 'json';
}

export interface Config {
  /** The file this came from, or "(embedded default)". */
  readonly source: string;
  readonly hostname: string;
  readonly dataDir: string;
  readonly listen: readonly ListenConfig[];
  readonly tls: ServerTlsConfig;
  readonly auth: AuthConfig;
  readonly relay?: UpstreamConfig;
  readonly routes: readonly RouteConfig[];
  readonly local: LocalConfig;
  readonly rewrite: RewriteConfig;
  readonly queue: QueueConfig;
  readonly limits: LimitsConfig;
  readonly log: LogConfig;
  readonly mx: MxConfig;
  readonly metrics?: MetricsConfig;
  /** Signing keys in file order; empty = no DKIM signing. */
  readonly dkim: readonly DkimConfig[];
  /** Settings that came from environment variables or `start --listen`, not the file (`check` lists them). */
  readonly overrides?: readonly { readonly name: string; readonly value: string }[];
}

/** One thing wrong with a config file, with the fix a user should apply. */
export interface Problem {
  readonly file: string;
  readonly line?: number;
  readonly path: string;
  readonly message: string;
  readonly fix: string;
}
