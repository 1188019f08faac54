// A local OAuth2 provider for tests: a token endpoint (refresh_token and RFC 8628
// device_code grants) and a device authorization endpoint over HTTP on 127.0.0.1.
// Access tokens live `expiresIn` seconds; every refresh rotates the refresh token
// (the old one stops working, as with Microsoft). Failures are injected on demand.
// With `app`, it also takes the client-credentials grant, checked as Microsoft Entra does
// (entra-token.ts), and stands in for Exchange Online's check of app-only tokens at AUTH.
import http from 'node:http';
import { entraTenant, type EntraApp } from './entra-token.js';
import type net from 'node:net';
import crypto from 'node:crypto';

export interface OAuthServerOptions {
  readonly clientId?: string;
  /** When set, the token endpoint requires it (a confidential client). */
  readonly clientSecret?: string;
  /** Access token lifetime in seconds (default 2). */
  readonly expiresIn?: number;
  /**
   * The expires_in the token endpoint reports, when it differs from the real lifetime: 0 makes
   * the client see each token as due for refresh at once, so a test need not wait for expiry.
   */
  readonly reportedExpiresIn?: number;
  /** Issue a new refresh token on each refresh (default true). */
  readonly rotate?: boolean;
  /** Device grant: answer authorization_pending this many polls, then approve (default 1). */
  readonly pendingPolls?: number;
  /** Device grant interval in seconds (default 1). */
  readonly interval?: number;
  /** An app registration for grant_type=client_credentials (its secret and/or certificate). */
  readonly app?: EntraApp;
  /** Mailboxes the app's service principal may use in Exchange (Add-MailboxPermission); absent: none, as without New-ServicePrincipal. */
  readonly mailboxes?: readonly string[];
}

export type TokenFault = 'invalid_grant' | 'server_error' | 'invalid_client';

export interface OAuthServer {
  readonly url: string;
  readonly tokenUrl: string;
  readonly deviceUrl: string;
  /** Refresh-token grants answered (successfully or not). */
  readonly refreshes: Array<{ refreshToken: string; ok: boolean; form: Record<string, string> }>;
  /** Device-code polls answered. */
  readonly polls: number;
  /** Client-credentials requests answered; `error` is the AADSTS code of a refusal. */
  readonly appGrants: Array<{ form: Record<string, string>; ok: boolean; error?: number }>;
  /** Makes `refreshToken` valid (what `oauth login` would have stored) and returns it. */
  issueRefreshToken(): string;
  /** The next `times` refresh grants fail this way; 'server_error' also fails client-credentials requests. */
  failNext(fault: TokenFault, times?: number): void;
  /** Every refresh token stops working (the user revoked access). */
  revokeRefreshTokens(): void;
  /** Every access token issued so far stops working before its expiry (a password change, say). */
  revokeAccessTokens(): void;
  /** Whether the upstream should accept this access token for this user now. */
  isValid(user: string, accessToken: string): boolean;
  close(): Promise<void>;
}

export async function startOAuthServer(opts: OAuthServerOptions = {}): Promise<OAuthServer> {
  const clientId = opts.clientId ?? 'test-client';
  const expiresIn = opts.expiresIn ?? 2;
  const refreshTokens = new Set<string>();
  const accessTokens = new Map<string, number>(); // token -> expiry (ms)
  const devices = new Map<string, number>(); // device_code -> polls so far
  const refreshes: OAuthServer['refreshes'] = [];
  const tenant = entraTenant({ clientId, expiresIn, app: opts.app ?? {}, mailboxes: opts.mailboxes ?? [] });
  let faults: Array<TokenFault> = [];
  let polls = 0;
  const id = (p: string) => `${p}-${crypto.randomBytes(9).toString('base64url')}`;

  const issue = (rotateFrom?: string) => {
    const access = id('at');
    accessTokens.set(access, Date.now() + expiresIn * 1000);
    const body: Record<string, unknown> = { access_token: access, token_type: 'Bearer', expires_in: opts.reportedExpiresIn ?? expiresIn, scope: 'https://mail.google.com/' };
    if (rotateFrom === undefined || opts.rotate !== false) {
      if (rotateFrom !== undefined) refreshTokens.delete(rotateFrom);
      const refresh = id('rt');
      refreshTokens.add(refresh);
      body['refresh_token'] = refresh;
    }
    return body;
  };

  const token = (form: Record<string, string>): [number, Record<string, unknown>] => {
    if (form['grant_type'] === 'client_credentials') {
      if (faults[0] !== 'server_error') return tenant.grant(form, `${base}/token`);
      faults.shift();
      return tenant.fail(form);
    }
    if (form['client_id'] !== clientId || (opts.clientSecret !== undefined && form['client_secret'] !== opts.clientSecret)) {
      return [401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' }];
    }
    if (form['grant_type'] === 'refresh_token') {
      const rt = form['refresh_token'] ?? '';
      const fault = faults.shift();
      const answer: [number, Record<string, unknown>] = fault === 'server_error' ? [500, { error: 'server_error' }]
        : fault === 'invalid_client' ? [401, { error: 'invalid_client', error_description: 'Unauthorized' }]
        : fault === 'invalid_grant' || !refreshTokens.has(rt) ? [400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }]
        : [200, issue(rt)];
      refreshes.push({ refreshToken: rt, ok: answer[0] === 200, form });
      return answer;
    }
    if (form['grant_type'] === 'urn:ietf:params:oauth:grant-type:device_code') {
      polls++;
      const seen = devices.get(form['device_code'] ?? '');
      if (seen === undefined) return [400, { error: 'expired_token' }];
      devices.set(form['device_code']!, seen + 1);
      if (seen < (opts.pendingPolls ?? 1)) return [428, { error: 'authorization_pending' }];
      devices.delete(form['device_code']!);
      return [200, issue()];
    }
    return [400, { error: 'unsupported_grant_type' }];
  };

  const device = (form: Record<string, string>): [number, Record<string, unknown>] => {
    if (form['client_id'] !== clientId) return [401, { error: 'invalid_client' }];
    const code = id('dc');
    devices.set(code, 0);
    return [200, { device_code: code, user_code: 'WDJB-MJHT', verification_uri: `${base}/activate`, expires_in: 600, interval: opts.interval ?? 1 }];
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const typed = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      const [status, body] = req.method !== 'POST' || !typed ? [405, { error: 'invalid_request' }]
        : req.url === '/token' ? token(form) : req.url === '/device' ? device(form) : [404, { error: 'not_found' }];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  return {
    url: base, tokenUrl: `${base}/token`, deviceUrl: `${base}/device`, refreshes, appGrants: tenant.grants,
    get polls() { return polls; },
    issueRefreshToken() { const t = id('rt'); refreshTokens.add(t); return t; },
    failNext(fault, times = 1) { faults = [...faults, ...Array<TokenFault>(times).fill(fault)]; },
    revokeRefreshTokens() { refreshTokens.clear(); },
    revokeAccessTokens() { accessTokens.clear(); tenant.revoke(); },
    isValid(user, accessToken) { return tenant.issued(accessToken) ? tenant.valid(user, accessToken) : (accessTokens.get(accessToken) ?? 0) > Date.now(); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
