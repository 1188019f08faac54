// The client side of AUTH PLAIN, LOGIN and CRAM-MD5 (RFC 4616, draft-murchison-sasl-login,
// RFC 2195) for the probe's own client. The password goes only into the socket: transcripts
// show "AUTH PLAIN ***" and the 334 exchanges as "***".
import crypto from 'node:crypto';
import type { LineClient, SmtpReply } from './client.js';

export const PROBE_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const;

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Runs the exchange; the final reply (235 on success) or the first unexpected one. */
export async function authenticate(client: LineClient, mechanism: string, username: string, password: string, timeoutMs: number): Promise<SmtpReply> {
  switch (mechanism) {
    case 'PLAIN':
      return client.command(`AUTH PLAIN ${b64(`\0${username}\0${password}`)}`, timeoutMs, 'AUTH PLAIN ***');
    case 'LOGIN': {
      const first = await client.command('AUTH LOGIN', timeoutMs);
      if (first.code !== 334) return first;
      const second = await client.command(b64(username), timeoutMs, '***');
      if (second.code !== 334) return second;
      return client.command(b64(password), timeoutMs, '***');
    }
    case 'CRAM-MD5': {
      const first = await client.command('AUTH CRAM-MD5', timeoutMs);
      if (first.code !== 334) return first;
      const challenge = Buffer.from((first.lines[0] ?? '').slice(4), 'base64').toString('utf8');
      const digest = crypto.createHmac('md5', password).update(challenge).digest('hex');
      return client.command(b64(`${username} ${digest}`), timeoutMs, '***');
    }
    default:
      throw new Error(`probe has no client for SASL ${mechanism}`);
  }
}
