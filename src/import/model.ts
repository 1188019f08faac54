// The smarthost set-up an import produces, before it becomes TOML text: plain
// values in smarthost's own terms, each with `from`, the old setting it came
// from (written as a comment above its section). Passwords are held here only
// until toml-writer.ts puts each in a file of its own.
import type { ListenAuth, ListenTls, OutboundTls } from '../config/types.js';

export interface ImportedListen {
  readonly address: string;
  readonly tls: ListenTls;
  readonly auth: ListenAuth;
  readonly trustedNetworks: readonly string[];
  readonly allowPlaintextAuth?: boolean;
  readonly from: string;
}

export interface ImportedUpstream {
  /** Routes only; also names the password file ("NAME.secret"). */
  readonly name?: string;
  readonly domains?: readonly string[];
  readonly senders?: readonly string[];
  readonly url: string;
  readonly tls: OutboundTls;
  readonly username?: string;
  /** Written to its own 0600 file, never into the TOML. */
  readonly password?: string;
  readonly caFile?: string;
  readonly clientCertificate?: string;
  readonly clientKey?: string;
  readonly mechanisms?: readonly string[];
  readonly allowPlaintextAuth?: boolean;
  readonly from: string;
}

export interface ImportedConfig {
  /** Absent: the system's host name at run time, as Postfix without myhostname. */
  readonly hostname?: { readonly value: string; readonly from: string };
  readonly dataDir: string;
  readonly listen: readonly ImportedListen[];
  readonly serverTls?: { readonly certificate: string; readonly key: string; readonly from: string };
  readonly relay?: ImportedUpstream;
  readonly routes: readonly ImportedUpstream[];
  readonly local: { readonly domains: readonly string[]; readonly aliases?: string; readonly from: string };
  readonly rewrite?: { readonly senders: Readonly<Record<string, string>>; readonly from: string };
  readonly mxTls?: { readonly tls: OutboundTls; readonly from: string };
  /** Bytes (Postfix message_size_limit, Sendmail confMAX_MESSAGE_SIZE); absent = smarthost's default. */
  readonly messageSize?: { readonly bytes: number; readonly from: string };
  /** TOML comment blocks for routes the import could not complete (e.g. a TLS level without a host to send to). */
  readonly routeHints: readonly string[];
}

/** Where an upstream's password goes, relative to the output file: "relay.secret", "NAME.secret". */
export function secretFileName(u: ImportedUpstream): string {
  return `${(u.name ?? 'relay').replace(/[^A-Za-z0-9_.-]/g, '-')}.secret`;
}
