// The envelope of an accepted message: everything known about it besides its
// bytes. Written once at intake and never changed; delivery keeps its own
// per-recipient state beside it (see queue/spool.ts).

export interface Recipient {
  readonly address: string;
  /** RFC 3461 NOTIFY values, e.g. ['FAILURE','DELAY']; absent when the client gave none. */
  readonly notify?: readonly string[];
  /** RFC 3461 ORCPT, as given ("rfc822;user@example.com"). */
  readonly orcpt?: string;
}

export interface ClientInfo {
  readonly address: string;       // IP address
  readonly hostname: string;      // reverse name, or "unknown"
  readonly helo: string;
  readonly protocol: string;      // SMTP, ESMTP, ESMTPS, ESMTPSA, or "local" for sendmail
  readonly tls?: { readonly version: string; readonly cipher: string };
  readonly authUser?: string;
  readonly authMethod?: string;
  /** The submitting account of a local submission (`smarthost sendmail`). */
  readonly uid?: number;
}

export interface Envelope {
  readonly id: string;
  readonly sender: string;                 // '' is the null sender <>
  readonly recipients: readonly Recipient[];
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
  readonly body?: '7BIT' | '8BITMIME';
  readonly smtputf8?: boolean;
  readonly client: ClientInfo;
  readonly arrived: string;                // ISO 8601
  readonly size: number;                   // bytes of the stored message
}

/** The client of mail smarthost makes or takes from a local program: notices, forwarded copies, `sendmail`. */
export function localClient(helo: string, uid?: number): ClientInfo {
  return { address: '127.0.0.1', hostname: 'localhost', helo, protocol: 'local', ...(uid !== undefined ? { uid } : {}) };
}
