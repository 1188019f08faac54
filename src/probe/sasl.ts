// The client side of AUTH PLAIN, LOGIN and CRAM-MD5 (RFC 4616, draft-murchison-sasl-login,
// RFC 2195), and of XOAUTH2 / OAUTHBEARER (RFC 7628) with an access token, for the probe's own
// client. The password and the token go only into the socket: transcripts show
// "AUTH PLAIN ***" / "AUTH XOAUTH2 ***" and the 334 exchanges as "***".
import crypto from 'node:crypto';
import { describeErrorChallenge, OAUTHBEARER_ABORT, oauthBearerResponse, xoauth2Response } from '../oauth/bearer-sasl.js';
import type { LineClient, SmtpReply } from './line-client.js';

export const PROBE_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const;
export const PROBE_OAUTH_MECHANISMS = ['XOAUTH2', 'OAUTHBEARER'] as const;
export type ProbeOAuthMechanism = typeof PROBE_OAUTH_MECHANISMS[number];

export interface OAuthExchange {
  /** The final reply: 235 on success. */
  readonly reply: SmtpReply;
  /** The server's error challenge in words ("status 400, scope …"), when it sent one. */
  readonly challenge?: string;
}

/**
 * AUTH with a bearer token in the initial response. A refusal may come as a 334 error challenge
 * (Gmail; RFC 7628 §3.2.2): the client ends it (an empty line for XOAUTH2, %x01 for OAUTHBEARER
 * per §3.2.3) and the server's final reply follows.
 */
export async function authenticateOAuth(client: LineClient, mechanism: ProbeOAuthMechanism, user: string, token: string,
  peer: { host: string; port: number }, timeoutMs: number): Promise<OAuthExchange> {
  const response = mechanism === 'XOAUTH2' ? xoauth2Response(user, token) : oauthBearerResponse(user, peer.host, peer.port, token);
  const first = await client.command(`AUTH ${mechanism} ${response}`, timeoutMs, `AUTH ${mechanism} ***`);
  if (first.code !== 334) return { reply: first };
  const challenge = describeErrorChallenge(first.lines[0] ?? '');
  const reply = await client.command(mechanism === 'XOAUTH2' ? '' : OAUTHBEARER_ABORT, timeoutMs, '***');
  return { reply, ...(challenge ? { challenge } : {}) };
}

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
