// The validated, frozen configuration. Fields already have the types the code
// uses (milliseconds, bytes, parsed URLs and CIDRs); modules receive only
// their own slice of it.
import type { KeyObject } from 'node:crypto';
import type { IPv4, IPv6 } from 'ipaddr.js';
import type { ReplyRule } from './presets.js';
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
  /**
   * user -> the envelope senders that user may use ("a@example.com", or "@example.org" for a whole
   * domain), lower-cased (Postfix smtpd_sender_login_maps with reject_authenticated_sender_login_mismatch).
   * Absent: no binding, an authenticated user may use any sender.
   */
  readonly senders?: Readonly<Record<string, readonly string[]>>;
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
  /**
   * At most `count` recipients sent per rolling `windowMs` (a provider's daily recipient limit);
   * absent = none. Recipients over it are deferred, never bounced; the count survives restarts.
   */
  readonly quota?: Rate;
  /** Set with `preset`: where the upstream's settings came from, and the provider's own reply rules. */
  readonly preset?: PresetUse;
  /** A cached connection carries at most this many messages. */
  readonly reuseMessages: number;
  /** ... and is not reused once this old, counted from its opening. */
  readonly reuseTimeMs: number;
}

/** A `preset` as it was applied: each key it set, and whether the user's own value won. */
export interface PresetUse {
  readonly name: string;
  readonly title: string;
  readonly fields: readonly PresetField[];
  /** The SPF include a sender domain needs for this provider (the sender-domain check). */
  readonly spfInclude?: string;
  /** When the include matters only in some set-ups, which. */
  readonly spfNote?: string;
  /** Replies that mean "slow down" at any stage (4.7.x from Google and Microsoft). */
  readonly throttle: readonly ReplyRule[];
  /** 5xx replies the provider documents as a passing limit: deferred, never bounced. */
  readonly temporary: readonly ReplyRule[];
}

export type PresetField =
  | { readonly key: string; readonly value: string; readonly from: 'preset' }
  | { readonly key: string; readonly value: string; readonly from: 'user'; readonly presetValue: string };

/** One parsed upstream URL. */
export interface UpstreamUrl {
  readonly url: string;
  readonly scheme: 'smtp' | 'smtps';
  readonly host: string;
  readonly port: number;
}

/** OAuth2 (XOAUTH2/OAUTHBEARER) sign-in to an upstream; URLs already filled in from `provider`. */
interface OAuthCommon {
  /** The name `smarthost oauth login` and the log use: "relay" or the [[route]]'s name. */
  readonly route: string;
  readonly provider?: 'google' | 'microsoft';
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly scope?: string;
}

/** grant = "refresh_token" (the default): a person signs the mailbox in once with `smarthost oauth login`. */
export interface DelegatedOAuthConfig extends OAuthCommon {
  readonly grant: 'refresh_token';
  /** RFC 8628 device authorization endpoint, for `smarthost oauth login`. */
  readonly deviceUrl?: string;
  /** Absent for public clients (no secret). */
  readonly clientSecretFile?: string;
  readonly refreshTokenFile: string;
}

/** How an app proves itself at the token endpoint: a secret, or a JWT signed with its certificate's key. */
export type AppCredential =
  | { readonly kind: 'secret'; readonly file: string }
  | { readonly kind: 'certificate'; readonly certificate: string; readonly key: string };

/** grant = "client_credentials": app-only tokens (Microsoft 365 SMTP.SendAsApp); no person, no refresh token. */
export interface AppOAuthConfig extends OAuthCommon {
  readonly grant: 'client_credentials';
  readonly credential: AppCredential;
  /** "username": always log in as `username`; "sender": as the envelope sender's mailbox (the null sender as `username`). */
  readonly loginAs: 'username' | 'sender';
}

export type OAuthConfig = DelegatedOAuthConfig | AppOAuthConfig;

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
  /** Apply the recipient domain's MTA-STS policy (RFC 8461); its cache lives in data_dir/mta-sts/. */
  readonly mtaSts: boolean;
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

/** Where the queue lives: files under data_dir (one node), or a PostgreSQL database that several nodes share. */
export type QueueStore =
  | { readonly kind: 'files' }
  | {
    readonly kind: 'postgresql';
    /** The connection string as written, without a password read from password_file. */
    readonly url: string;
    /** The role's password, read at each connection (absent: in the URL, PGPASSWORD or ~/.pgpass). */
    readonly passwordFile?: string;
  };

export interface QueueConfig {
  readonly store: QueueStore;
  /** This node's name on a shared store: shown with each lease it holds. */
  readonly nodeName: string;
  /** How long a claimed message stays this node's without a renewal (shared store). */
  readonly leaseMs: number;
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
  /**
   * Failed AUTH per account, from any address; over it the account logs in only from addresses
   * it logged in from recently (454 4.7.0 elsewhere). Absent: no limit.
   */
  readonly authFailuresPerAccount?: Rate;
  /** Connection attempts per client address over time, trusted networks aside; absent: no limit. */
  readonly connectionRate?: Rate;
  /** Client networks that limits.auth_failures never blocks. */
  readonly authFailuresExempt: readonly Cidr[];
  readonly lineLength: number;
  readonly idleTimeoutMs: number;
  readonly dataTimeoutMs: number;
  /** A TLS handshake (implicit TLS, or after STARTTLS) must be done within this; never longer than idleTimeoutMs. */
  readonly tlsHandshakeTimeoutMs: number;
  readonly errors: number;
  /** NOOP, VRFY, ETRN and RSET a session may send before each one counts as an error (Postfix smtpd_junk_command_limit). */
  readonly junkCommands: number;
  /** MAIL commands one connection may give; the next gets 421 (Exim smtp_accept_max_per_connection). */
  readonly messagesPerSession: number;
  /** A command line ending in a bare LF from outside trusted_networks: 550 and hang up (Postfix smtpd_forbid_bare_newline). */
  readonly forbidBareNewline: boolean;
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

/** [http]: the JSON API and the web console on one listener; absent from Config means none. */
export interface HttpConfig {
  readonly address: string;         // as written, e.g. "127.0.0.1:8025"
  readonly host: string;
  readonly port: number;
  /** HTTPS with the [tls] certificate (or the generated one). */
  readonly tls: boolean;
  /** A non-loopback address without TLS (behind a TLS-terminating proxy); refused otherwise. */
  readonly allowPlaintext: boolean;
  /** Written by `smarthost token add`; only hashes. */
  readonly tokensFile: string;
  /** Largest request body taken: a message of limits.message_size, base64-encoded in JSON. */
  readonly bodyLimit: number;
  /** Failed token attempts per client address before 429 (like limits.auth_failures). */
  readonly authFailures: Rate;
}

/** [[webhook]]: delivery events posted as signed JSON. */
export interface WebhookConfig {
  readonly url: string;
  readonly events: readonly ('delivered' | 'deferred' | 'bounced' | 'delayed' | 'suppressed')[];
  readonly secretFile: string;
  readonly timeoutMs: number;
}

/** Recipients refused as nonexistent are bounced at once later, without contacting the upstream. */
export interface SuppressionConfig {
  readonly enabled: boolean;
  /** Enhanced status codes of a permanent failure that suppress its recipient. */
  readonly codes: readonly string[];
  readonly expireMs: number;
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
  readonly http?: HttpConfig;
  readonly suppression: SuppressionConfig;
  readonly webhooks: readonly WebhookConfig[];
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
