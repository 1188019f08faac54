// When `smarthost sendmail` may not write the queue (PHP's mail() as
// www-data, a cron job of another user, while the daemon runs as its own
// user), it hands the message to the running daemon over SMTP on a loopback
// listener that trusts loopback, as Postfix's postdrop hands it to pickup.
// The daemon fsyncs before its 250, so the guarantee is the same.
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Config, ListenConfig } from '../config/types.js';
import { isTrusted } from '../smtpd/relay-policy.js';

export interface RelayedSubmission {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly message: Buffer;
  readonly notify?: readonly string[];
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
}

/** A listener sendmail may use: reachable on loopback, trusting 127.0.0.1, no AUTH required. */
export function loopbackListener(config: Config): ListenConfig | undefined {
  return config.listen.find((l) =>
    ['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost'].includes(l.host) || l.host.startsWith('127.')
      ? isTrusted(clientAddress(l), l.trustedNetworks) && l.auth !== 'required' : false);
}

/** Where we connect to reach the listener, which is also the address it sees us come from. */
function clientAddress(l: ListenConfig): string {
  if (l.host === '::1' || l.host === '::') return '::1';
  return ['0.0.0.0', 'localhost'].includes(l.host) ? '127.0.0.1' : l.host;
}

/** Resolves with the daemon's 250 reply; rejects with a plain reason. */
export function submitOverSmtp(config: Config, listen: ListenConfig, s: RelayedSubmission): Promise<string> {
  const host = clientAddress(listen);
  const conn = new SMTPConnection({
    host, port: listen.port, name: config.hostname, secure: listen.tls === 'implicit',
    requireTLS: listen.tls === 'starttls-required', ignoreTLS: listen.tls === 'none',
    tls: { rejectUnauthorized: false }, // our own daemon on loopback, often with its self-signed certificate
    connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000,
  });
  return new Promise((resolve, reject) => {
    conn.once('error', (e: Error) => reject(new Error(`the daemon on ${host}:${listen.port} did not take it: ${e.message}`)));
    conn.connect(() => {
      const dsn = { ...(s.ret ? { ret: s.ret } : {}), ...(s.envid ? { envid: s.envid } : {}), ...(s.notify ? { notify: [...s.notify] } : {}) };
      conn.send({ from: s.sender, to: [...s.recipients], ...(Object.keys(dsn).length ? { dsn } : {}) } as SMTPConnection.Envelope, s.message, (err, info) => {
        conn.quit();
        if (err) reject(new Error(`the daemon refused it: ${err.message}`));
        else resolve(info.response);
      });
    });
  });
}
