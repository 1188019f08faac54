// Access tokens for one upstream mailbox: kept in memory only, refreshed with
// the refresh_token grant (RFC 6749 §6) shortly before they expire or when the
// upstream refuses one. Concurrent deliveries share one refresh in flight; a
// rotated refresh token is written back to refresh_token_file at once.
import type { DelegatedOAuthConfig, OAuthConfig } from '../config/types.js';
import { readFirstLine, writeSecretFile } from './secret-file.js';
import { oauthErrorText, postForm, type FetchFn } from './token-endpoint.js';

/**
 * Why no token could be had: the endpoint unreachable, the provider in trouble (5xx, 429), the grant
 * or client refused, or a local file unreadable. smtp/classify.ts turns it into the mail's status.
 */
export type TokenProblem = 'network' | 'provider' | 'refused' | 'unreadable';

/** A token could not be had; `message` says what happened and what to do. Mail defers with it. */
export class OAuthError extends Error {
  constructor(readonly problem: TokenProblem, message: string) { super(message); }
}

/** Access tokens for AUTH XOAUTH2/OAUTHBEARER: a delegated TokenSource or an app-only AppTokenSource. */
export interface AccessTokens {
  readonly config: OAuthConfig;
  /** Token grants sent so far (a probe tells a fresh token from a cached one). */
  readonly refreshes: number;
  /** A token that should still be valid; throws OAuthError. */
  token(): Promise<string>;
  /** The upstream refused `rejected`: a new token, unless another delivery already got one. */
  renew(rejected: string): Promise<string>;
}

/**
 * What both token sources share: a token kept in memory until `refreshAt`, and one grant in
 * flight at a time however many deliveries ask. Subclasses say how a grant is made.
 */
export abstract class CachedTokens {
  protected cached: { token: string; refreshAt: number } | undefined;
  private inflight: Promise<string> | undefined;
  protected abstract now(): number;
  protected abstract grant(): Promise<string>;

  /** A token that should still be valid; asks for a new one first when it is about to expire. Throws OAuthError. */
  token(): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return Promise.resolve(this.cached.token);
    return this.request();
  }

  /** The upstream refused `rejected`: a new token, unless another delivery already got one. */
  renew(rejected: string): Promise<string> {
    if (this.cached && this.cached.token !== rejected && this.now() < this.cached.refreshAt) return Promise.resolve(this.cached.token);
    this.cached = undefined;
    return this.request();
  }

  private request(): Promise<string> {
    this.inflight ??= this.grant().finally(() => { this.inflight = undefined; });
    return this.inflight;
  }
}

export interface TokenSourceOptions {
  readonly fetch?: FetchFn;
  readonly now?: () => number;
  /** Told when a rotated refresh token could not be saved (it is still used from memory). */
  readonly warn?: (message: string) => void;
  readonly timeoutMs?: number;
}

/** Refresh this long before expiry: 60 s, or a quarter of a short lifetime. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(60_000, lifetimeMs / 4);
}

const DEFAULT_LIFETIME_S = 3600; // when expires_in is missing (RFC 6749 §5.1 makes it optional)

export class TokenSource extends CachedTokens implements AccessTokens {
  /** A rotated refresh token the file does not hold (the write failed), and the file content it replaced. */
  private unsaved: { token: string; replaced: string } | undefined;
  /** Refresh grants sent so far (for logs and tests). */
  refreshes = 0;

  constructor(readonly config: DelegatedOAuthConfig, readonly user: string, private readonly opts: TokenSourceOptions = {}) { super(); }

  protected now(): number { return (this.opts.now ?? Date.now)(); }

  protected async grant(): Promise<string> {
    const c = this.config;
    const refreshToken = this.refreshToken();
    const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: c.clientId };
    const secret = this.clientSecret();
    if (secret !== undefined) form['client_secret'] = secret;
    this.refreshes++;
    const started = this.now();
    const answer = await postForm(c.tokenUrl, form, { ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}), timeoutMs: this.opts.timeoutMs ?? 30_000 });
    if (answer.kind === 'network') throw this.failure('network', `cannot reach the token endpoint (${answer.detail})`, 'smarthost retries; check the network and token_url');
    const json = answer.json;
    const accessToken = json?.['access_token'];
    if (answer.status !== 200 || typeof accessToken !== 'string' || !accessToken) throw this.refused(answer.status, json);
    const rotated = json?.['refresh_token'];
    if (typeof rotated === 'string' && rotated && rotated !== refreshToken) this.saveRotated(rotated, refreshToken);
    const lifetimeMs = (typeof json?.['expires_in'] === 'number' ? json['expires_in'] : Number(json?.['expires_in']) || DEFAULT_LIFETIME_S) * 1000;
    this.cached = { token: accessToken, refreshAt: started + lifetimeMs - refreshMarginMs(lifetimeMs) };
    return accessToken;
  }

  private refreshToken(): string {
    const file = this.config.refreshTokenFile;
    let fromFile: string;
    try { fromFile = readFirstLine(file); } catch (e) {
      throw this.failure('refused', `no refresh token (cannot read refresh_token_file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, this.loginHint('to sign in'), 'OAuth2 for');
    }
    if (!fromFile) throw this.failure('refused', `no refresh token (refresh_token_file ${file} is empty)`, this.loginHint('to sign in'), 'OAuth2 for');
    // the file still holds what a rotation replaced: the newer token is only in memory
    if (this.unsaved && this.unsaved.replaced === fromFile) return this.unsaved.token;
    this.unsaved = undefined;
    return fromFile;
  }

  private clientSecret(): string | undefined {
    const file = this.config.clientSecretFile;
    if (file === undefined) return undefined;
    try { return readFirstLine(file); } catch (e) {
      throw this.failure('unreadable', `cannot read client_secret_file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'fix the file or its permissions', 'OAuth2 for');
    }
  }

  /** Providers that rotate (Microsoft, many others) may revoke the old token soon: save the new one first. */
  private saveRotated(token: string, replaced: string): void {
    try {
      writeSecretFile(this.config.refreshTokenFile, token);
      this.unsaved = undefined;
    } catch (e) {
      this.unsaved = { token, replaced };
      this.opts.warn?.(`OAuth2 for ${this.user}: the provider issued a new refresh token, but it could not be saved to ${this.config.refreshTokenFile} ` +
        `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); it is used from memory until smarthost stops; fix the file's directory permissions`);
    }
  }

  private refused(status: number, json: Readonly<Record<string, unknown>> | undefined): OAuthError {
    const err = oauthErrorText(json);
    const code = typeof json?.['error'] === 'string' ? json['error'] : '';
    if (status >= 500 || status === 429) return this.failure('provider', `HTTP ${status}${err ? ` ${err}` : ''} from the token endpoint`, 'the provider has trouble; smarthost retries');
    if (code === 'invalid_grant') return this.failure('refused', err!, this.loginHint('to sign in again'));
    if (code === 'invalid_client' || code === 'unauthorized_client') return this.failure('refused', err!, 'check client_id and client_secret_file against the app registration');
    if (code === 'invalid_scope') return this.failure('refused', err!, `check scope (now ${this.config.scope ?? 'unset'}), then run "smarthost oauth login ${this.config.route}"`);
    if (err) return this.failure('refused', err, `check the OAuth2 settings of ${this.section()}`);
    return this.failure('refused', `HTTP ${status} without an access token`, `check token_url in ${this.section()}`);
  }

  private failure(problem: TokenProblem, what: string, todo: string, lead = 'OAuth2 token refresh for'): OAuthError {
    const verb = lead === 'OAuth2 for' ? ':' : ' failed:';
    return new OAuthError(problem, `${lead} ${this.user} at ${this.config.tokenUrl}${verb} ${what}; ${todo}`);
  }

  private loginHint(why: string): string { return `run "smarthost oauth login ${this.config.route}" ${why}`; }
  private section(): string { return this.config.route === 'relay' ? '[relay]' : `route ${this.config.route}`; }
}

const shared = new Map<string, TokenSource>();

/**
 * The daemon's one source per mailbox and sign-in settings, so every connection pool and a
 * reloaded config share the cached token and a refresh in flight.
 */
export function sharedTokenSource(config: DelegatedOAuthConfig, user: string, opts: TokenSourceOptions = {}): TokenSource {
  const key = JSON.stringify([user, config.tokenUrl, config.clientId, config.clientSecretFile ?? '', config.refreshTokenFile, config.scope ?? '', config.route]);
  let s = shared.get(key);
  if (!s) { s = new TokenSource(config, user, opts); shared.set(key, s); }
  return s;
}
