// Every default of smarthost.toml, in one place: the section readers apply them, and
// `smarthost config default` (default-toml.ts) prints them.
export const DEFAULTS = Object.freeze({
  listen: '127.0.0.1:2525',
  trustedNetworks: ['127.0.0.0/8', '::1/128'],
  dataDir: './data',
  localDomains: ['localhost'],
  maildir: '{data_dir}/mail/{user}',
  messageSize: 25_000_000,
  recipients: 100,
  connections: 500,
  connectionsPerIp: 50,
  authFailures: '5/10m',
  authFailuresPerAccount: '10/15m', // any address; the Windows lockout baseline (10 in 15 minutes)
  lineLength: 2048,
  idleTimeoutMs: 300_000,     // Postfix smtpd_timeout
  dataTimeoutMs: 600_000,
  errors: 20,                 // Postfix smtpd_hard_error_limit
  junkCommands: 100,          // Postfix smtpd_junk_command_limit
  headerSize: 102_400,        // Postfix header_size_limit
  messagesPerSession: 1000,   // Exim smtp_accept_max_per_connection
  tlsHandshakeTimeoutMs: 30_000, // at most idle_timeout; Postfix smtpd_starttls_timeout is 300s, 10s under stress
  forbidBareNewline: true,    // Postfix smtpd_forbid_bare_newline = reject, for clients outside trusted_networks
  hops: 50,                   // Postfix hopcount_limit
  lifetimeMs: 5 * 86_400_000, // Postfix maximal_queue_lifetime
  retryMinMs: 300_000,
  retryMaxMs: 3_600_000,
  queueStore: Object.freeze({ kind: 'files' as const }), // files under data_dir; [queue] store names a shared database
  leaseMs: 120_000,           // a claimed message returns to the shared queue after this long without its node
  concurrency: 20,            // connections per route, as Postfix's default_destination_concurrency_limit
  mxPort: 25,
  mtaSts: true,               // RFC 8461 for MX delivery, on as in Stalwart, KumoMTA, maddy and mox
  smtpTimeoutMs: 300_000,     // per command and reply (Postfix smtp_*_timeout are 300s)
  relayTls: 'verify' as const,    // a provider's name is known: check its certificate (smtp_tls_security_level = verify)
  mxTls: 'may' as const,          // strangers' MX hosts: opportunistic, as Postfix's default
  relayMinTls: 'TLSv1.2' as const,
  mxMinTls: 'TLSv1' as const,     // opportunistic TLS to strangers: any TLS beats plaintext (Postfix smtp_tls_protocols default)
  serverMinTls: 'TLSv1.2' as const,
  mechanisms: Object.freeze(['PLAIN', 'LOGIN']),
  oauthMechanisms: Object.freeze(['XOAUTH2']),
  delayWarningMs: 0,          // off, as Postfix's delay_warning_time = 0
  logFormat: 'postfix' as const,
  metrics: '127.0.0.1:9325',  // loopback: the scrape page is unauthenticated
  reuseMessages: 100,         // messages per cached upstream connection (Postfix smtp_connection_reuse_count_limit is unlimited; providers cap it)
  reuseTimeMs: 300_000,       // age of a cached upstream connection (Postfix smtp_connection_reuse_time_limit is 300s)
  pregreetMs: 0,              // off: the greeting goes out at once (Postfix smtpd without postscreen)
  pregreetMaxMs: 60_000,      // a client waiting longer than this for a banner gives up (Postfix postscreen_greet_wait is 6s)
  http: '127.0.0.1:8025',     // loopback: anything wider needs TLS or allow_plaintext
  httpAuthFailures: '10/10m', // failed API tokens per client address, then 429
  // mailbox does not exist (RFC 3463): 5.1.1 bad destination mailbox, 5.1.10 null MX / recipient address has null MX
  suppression: Object.freeze({ enabled: true, codes: Object.freeze(['5.1.1', '5.1.10']), expireMs: 30 * 86_400_000 }),
});
export type Defaults = typeof DEFAULTS;
