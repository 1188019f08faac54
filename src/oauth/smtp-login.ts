// AUTH XOAUTH2 / OAUTHBEARER on an open nodemailer SMTPConnection with a
// TokenSource. When the upstream refuses the token (XOAUTH2's 334 error
// challenge, or 535 / 5.7.x) the token is refreshed once and AUTH tried once
// more on the same connection; a second refusal is the upstream's answer.
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { OAuthError, type AccessTokens } from './token-source.js';
import { OAUTHBEARER_ABORT, oauthBearerResponse, xoauth2Response } from './bearer-sasl.js';

export type OAuthMechanism = 'XOAUTH2' | 'OAUTHBEARER';

export type OAuthLogin =
  | { readonly ok: true; readonly refreshed: boolean }
  /** No token could be had (refresh failed): the mail waits, `error.message` says what to do. */
  | { readonly ok: false; readonly token: OAuthError }
  /** The upstream refused the token, also after one refresh; `response` is its last reply, `tried` the last token sent. */
  | { readonly ok: false; readonly token?: undefined; readonly refreshed: boolean; readonly response?: string; readonly message: string; readonly tried: string };

/** `token`: the last token sent, when nodemailer renewed it on the way. */
interface Attempt { ok: boolean; err?: { message: string; response?: string }; renewed: boolean; renewError?: unknown; token?: string }

/** RFC 4954 §6 535 5.7.8 and Microsoft's 535 5.7.3 / 5.7.139: the credentials, i.e. the token. */
const tokenRefused = (response: string | undefined) => /^535[ -]/.test(response ?? '') || /^5\d\d[ -]5\.7\.\d+/.test(response ?? '');

/** Logs in as `user` (the route's mailbox, or the sender's with login_as = "sender"). */
export async function oauthLogin(conn: SMTPConnection, source: AccessTokens, user: string, method: OAuthMechanism, peer: { host: string; port: number }): Promise<OAuthLogin> {
  const renew = (rejected: string) => source.renew(rejected);
  let token: string;
  try { token = await source.token(); } catch (e) { return tokenFailure(e); }
  const first = await attempt(conn, method, user, token, peer, renew);
  if (first.ok) return { ok: true, refreshed: first.renewed };
  if (first.renewError !== undefined) return tokenFailure(first.renewError);
  if (first.renewed || !tokenRefused(first.err?.response)) return refused(first, first.renewed, first.token ?? token);
  try { token = await source.renew(token); } catch (e) { return tokenFailure(e); }
  const second = await attempt(conn, method, user, token, peer, undefined);
  return second.ok ? { ok: true, refreshed: true } : refused(second, true, token);
}

function tokenFailure(e: unknown): OAuthLogin {
  if (e instanceof OAuthError) return { ok: false, token: e };
  throw e; // a bug, not a mail outcome
}

function refused(a: Attempt, refreshed: boolean, tried: string): OAuthLogin {
  return { ok: false, refreshed, tried, message: a.err?.message ?? 'refused', ...(a.err?.response ? { response: a.err.response } : {}) };
}

function attempt(conn: SMTPConnection, method: OAuthMechanism, user: string, token: string, peer: { host: string; port: number },
  renew: ((rejected: string) => Promise<string>) | undefined): Promise<Attempt> {
  return method === 'XOAUTH2' ? xoauth2(conn, user, token, renew) : oauthBearer(conn, user, token, peer);
}

/**
 * nodemailer's own XOAUTH2: it answers the 334 error challenge with an empty line and then asks
 * `getToken(true)` for a new token and tries again, so the in-connection retry is its job here.
 */
function xoauth2(conn: SMTPConnection, user: string, token: string, renew: ((rejected: string) => Promise<string>) | undefined): Promise<Attempt> {
  const state: Attempt = { ok: false, renewed: false };
  let current = token;
  const oauth2 = {
    getToken(again: boolean, cb: (err: unknown, token?: string) => void) {
      // already refreshed on this connection: send the same token and let the server's refusal stand
      if (!again || !renew) return cb(null, current);
      state.renewed = true;
      renew(current).then((t) => { current = t; state.token = t; cb(null, t); }, (e: unknown) => { state.renewError = e; cb(e); });
    },
    buildXOAuth2Token: (t: string) => xoauth2Response(user, t),
  };
  return login(conn, { method: 'XOAUTH2', user, oauth2 }, state);
}

/** RFC 7628 through nodemailer's custom-auth hook; nodemailer has no OAUTHBEARER of its own. */
function oauthBearer(conn: SMTPConnection, user: string, token: string, peer: { host: string; port: number }): Promise<Attempt> {
  type Ctx = { sendCommand(cmd: string): Promise<{ status: number }>; resolve(): void; reject(err: Error): void };
  const custom = (conn as unknown as { customAuth: Map<string, (ctx: Ctx) => Promise<void>> }).customAuth;
  custom.set('OAUTHBEARER', async (ctx) => {
    let r = await ctx.sendCommand(`AUTH OAUTHBEARER ${oauthBearerResponse(user, peer.host, peer.port, token)}`);
    if (r.status === 334) r = await ctx.sendCommand(OAUTHBEARER_ABORT); // an error challenge (RFC 7628 §3.2.3)
    if (r.status >= 200 && r.status < 300) ctx.resolve(); else ctx.reject(new Error('Invalid login'));
  });
  return login(conn, { method: 'OAUTHBEARER', user }, { ok: false, renewed: false });
}

function login(conn: SMTPConnection, auth: Record<string, unknown>, state: Attempt): Promise<Attempt> {
  return new Promise((resolve) => {
    // the typings want XOAuth2 options; at runtime smtp-connection takes any object with getToken/buildXOAuth2Token
    conn.login(auth as unknown as Parameters<SMTPConnection['login']>[0], (err) => {
      resolve(err ? { ...state, ok: false, err: { message: err.message, ...(err.response ? { response: err.response } : {}) } } : { ...state, ok: true });
    });
  });
}
