// The embedded default written out as smarthost.toml (`smarthost config default`),
// built from DEFAULTS so that it cannot drift: default-toml.test.ts parses it
// back and compares it with the config of an empty file.
import { formatDuration } from './units.js';
import { DEFAULTS } from './defaults.js';

const q = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(q).join(', ')}]`;
const duration = (ms: number) => q(ms === 0 ? '0' : formatDuration(ms));
const size = (bytes: number) => q(bytes % 1e6 === 0 ? `${bytes / 1e6}MB` : bytes % 1e3 === 0 ? `${bytes / 1e3}KB` : `${bytes}B`);

export function defaultToml(): string {
  const d = DEFAULTS;
  return `# smarthost.toml: the embedded default, what smarthost runs on when it finds no file
# (printed by \`smarthost config default\`). Every key is optional; smarthost.toml(5)
# and contrib/smarthost.example.toml describe them all.
# hostname = "relay.example.com"       # default: this machine's name
data_dir = ${q(d.dataDir)}                  # relative paths are relative to this file's folder

[[listen]]
address = ${q(d.listen)}
tls = "none"                           # none | starttls | starttls-required | implicit
auth = "none"                          # none | optional | required
trusted_networks = ${list(d.trustedNetworks)}   # may relay without AUTH
pregreet = ${duration(d.pregreetMs)}

[tls]                                  # no certificate/key: a self-signed pair in data_dir/tls/
min_version = "TLSv1.2"

[auth]
# users_file = "data_dir/users"        # default: inside data_dir, so it moves with data_dir

# No [relay] and no [[route]]: mail that is not local goes to the recipients' MX hosts.

[local]
domains = ${list(d.localDomains)}
# maildir = ${q(d.maildir)}   # default: inside data_dir, so it moves with data_dir
# aliases: none; users: the accounts in /etc/passwd

[rewrite]
senders = {}

[queue]
lifetime = ${duration(d.lifetimeMs)}
retry_min = ${duration(d.retryMinMs)}
retry_max = ${duration(d.retryMaxMs)}
delay_warning = "0"
defer_delivery = false

[limits]
message_size = ${size(d.messageSize)}
recipients = ${d.recipients}
connections = ${d.connections}
connections_per_ip = ${d.connectionsPerIp}
auth_failures = ${q(d.authFailures)}                # per client address
auth_failures_per_account = ${q(d.authFailuresPerAccount)}   # per account, any address; "0": no limit
line_length = ${d.lineLength}
idle_timeout = ${duration(d.idleTimeoutMs)}
data_timeout = ${duration(d.dataTimeoutMs)}
tls_handshake_timeout = ${duration(d.tlsHandshakeTimeoutMs)}          # at most idle_timeout
errors = ${d.errors}
junk_commands = ${d.junkCommands}
messages_per_session = ${d.messagesPerSession}
forbid_bare_newline = ${d.forbidBareNewline}             # outside trusted_networks
connection_rate = "0"                  # per client address outside trusted_networks, e.g. "60/1m"; "0": no limit
hops = ${d.hops}
header_size = ${size(d.headerSize)}

[mx]
port = ${d.mxPort}
tls = "may"
nameservers = []                       # empty: the system resolver
concurrency = ${d.concurrency}
timeout = ${duration(d.smtpTimeoutMs)}
mta_sts = ${d.mtaSts}                         # the recipient domain's MTA-STS policy (RFC 8461), cached in data_dir/mta-sts/

[log]
format = "postfix"                     # or "json"; no file: stdout

[suppression]                          # recipients refused as nonexistent bounce at once later, without the upstream
enabled = ${d.suppression.enabled}
codes = ${list(d.suppression.codes)}
expire = ${duration(d.suppression.expireMs)}

# No [metrics]: no Prometheus listener. No [http]: no API or console.
# No [[dkim]]: mail leaves unsigned ("smarthost dkim keygen DOMAIN" makes a key).
`;
}
