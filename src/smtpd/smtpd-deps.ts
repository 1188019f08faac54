// What an inbound listener is given by the process that runs it (daemon.ts, or
// `smarthost sendmail -bs`): the daemon's parts it shares with other listeners.
import type { AuthConfig, LimitsConfig } from '../config/types.js';
import type { AccountFailureCounts } from '../auth/account-throttle.js';
import type { AuthFailureCounts } from '../auth/throttle.js';
import type { UserStore } from '../auth/users-file.js';
import type { Envelope } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import type { Spool } from '../queue/spool.js';
import type { CertPair } from '../tls/server-cert.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { LocalLookup } from './relay-policy.js';
import type { ReverseLookup } from './reverse-lookup.js';

export interface SmtpdDeps {
  readonly hostname: string;
  readonly limits: LimitsConfig;
  readonly localDomains: readonly string[];
  /** Does a local address name a mailbox or alias (Postfix local_recipient_maps)? */
  readonly localExists?: LocalLookup;
  readonly spool: Spool;
  readonly log: MailLog;
  readonly users: UserStore;
  /** limits.auth_failures: in memory, or for every node on a shared store. */
  readonly throttle: AuthFailureCounts;
  /** limits.auth_failures_per_account; absent: failures are counted per address only. */
  readonly accounts?: AccountFailureCounts;
  readonly connections: ConnectionLimits;
  readonly cert?: CertPair;
  readonly minTlsVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Told about every message that got 250 (the queue manager picks it up). */
  readonly onQueued?: (envelope: Envelope) => void;
  /** Resolves when delivery has room for more mail (Postfix in_flow_delay); MAIL FROM waits for it. */
  readonly inflow?: () => Promise<void>;
  /** Counters for metrics; absent in `smarthost sendmail -bs`. */
  readonly observe?: SmtpdObserver;
  /** [auth] allow_authzid, authenticated_header and senders; absent: all off. */
  readonly auth?: Pick<AuthConfig, 'allowAuthzid' | 'authenticatedHeader' | 'senders'>;
  /** Free bytes where messages are stored, for MAIL FROM's SIZE=; absent or undefined: not checked. */
  readonly freeBytes?: () => Promise<number | undefined>;
  /** Client names, cached across sessions and listeners (one per daemon). */
  readonly reverse?: ReverseLookup;
  /**
   * TLS session ticket keys, one set per daemon: kept across reloads, so a client that
   * reconnects resumes its TLS session (no full handshake) on every listener, also after a
   * SIGHUP. New keys at each start.
   */
  readonly ticketKeys?: Buffer;
}

export interface SmtpdObserver {
  connection(listener: string, open: boolean): void;
  authFailed(): void;
  received(bytes: number, seconds: number): void;
}
