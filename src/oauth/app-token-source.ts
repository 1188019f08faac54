// App-only access tokens (grant = "client_credentials", RFC 6749 §4.4): the app proves
// itself with its client secret or a JWT signed with its certificate (client-assertion.ts),
// and gets a token that may log in as any mailbox Exchange lets it use. One token serves
// every mailbox of the app, kept in memory until shortly before it expires; one request in
// flight at a time. Nothing is written to disk: there is no refresh token.
import type { AppOAuthConfig } from '../config/types.js';
import { ASSERTION_TYPE, AssertionKeyError, clientAssertion, loadAssertionKey } from './client-assertion.js';
import { explainTokenError } from './microsoft-replies.js';
import { readFirstLine } from './secret-file.js';
import { oauthErrorText, postForm, type FetchFn } from './token-endpoint.js';
import { CachedTokens, OAuthError, type AccessTokens, type TokenProblem } from './token-source.js';

export interface AppTokenSourceOptions {
  readonly fetch?: FetchFn;
  readonly now?: () => number;
  readonly timeoutMs?: number;
}

/** Ask again this long before expiry: 5 minutes, or a quarter of a short lifetime. */
export function appRefreshMarginMs(lifetimeMs: number): number {
  return Math.min(300_000, lifetimeMs / 4);
}

const DEFAULT_LIFETIME_S = 3600; // expires_in is optional (RFC 6749 §5.1); Microsoft's are 60-90 minutes

export class AppTokenSource extends CachedTokens implements AccessTokens {
  /** Token requests sent so far (for the probe and tests). */
  refreshes = 0;

  constructor(readonly config: AppOAuthConfig, private readonly opts: AppTokenSourceOptions = {}) { super(); }

  protected now(): number { return (this.opts.now ?? Date.now)(); }

  protected async grant(): Promise<string> {
    const c = this.config;
    const form: Record<string, string> = { client_id: c.clientId, grant_type: 'client_credentials', ...(c.scope !== undefined ? { scope: c.scope } : {}), ...this.proof() };
    this.refreshes++;
    const started = this.now();
    const answer = await postForm(c.tokenUrl, form, { ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}), timeoutMs: this.opts.timeoutMs ?? 30_000 });
    if (answer.kind === 'network') throw this.failure('network', `cannot reach the token endpoint (${answer.detail})`, 'smarthost retries; check the network and token_url');
    const json = answer.json;
    const accessToken = json?.['access_token'];
    if (answer.status !== 200 || typeof accessToken !== 'string' || !accessToken) throw this.refused(answer.status, json);
    const lifetimeMs = (Number(json?.['expires_in']) || DEFAULT_LIFETIME_S) * 1000;
    this.cached = { token: accessToken, refreshAt: started + lifetimeMs - appRefreshMarginMs(lifetimeMs) };
    return accessToken;
  }

  /** client_secret, or a fresh client assertion; the files are read for each request, so a replaced secret or certificate applies. */
  private proof(): Record<string, string> {
    const cred = this.config.credential;
    if (cred.kind === 'secret') {
      try { return { client_secret: readFirstLine(cred.file) }; } catch (e) {
        throw this.failure('unreadable', `cannot read client_secret_file ${cred.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'fix the file or its permissions');
      }
    }
    try {
      const key = loadAssertionKey(cred.certificate, cred.key);
      return { client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion(key, this.config.clientId, this.config.tokenUrl, this.now()) };
    } catch (e) {
      if (!(e instanceof AssertionKeyError)) throw e;
      throw this.failure('unreadable', e.message, e.fix);
    }
  }

  private refused(status: number, json: Readonly<Record<string, unknown>> | undefined): OAuthError {
    // Microsoft appends Trace ID, Correlation ID and Timestamp to every description: noise in a log line
    const err = oauthErrorText(json)?.replace(/ Trace ID: [^)]*(?=\)$)/, '');
    if (status >= 500 || status === 429) return this.failure('provider', `HTTP ${status}${err ? ` ${err}` : ''} from the token endpoint`, 'the provider has trouble; smarthost retries');
    const known = explainTokenError(json);
    const said = err ?? `HTTP ${status} without an access token`;
    if (known) return this.failure('refused', `${known.meaning}: ${said}`, known.fix);
    return this.failure('refused', said, `check token_url, client_id and the app's credential in ${this.config.route === 'relay' ? '[relay]' : `route ${this.config.route}`}`);
  }

  private failure(problem: TokenProblem, what: string, todo: string): OAuthError {
    return new OAuthError(problem, `OAuth2 app-only token request for client_id ${this.config.clientId} at ${this.config.tokenUrl} failed: ${what}; ${todo}`);
  }
}

const shared = new Map<string, AppTokenSource>();

/** The daemon's one source per app (not per mailbox: the app's token logs in as each of them). */
export function sharedAppTokenSource(config: AppOAuthConfig, opts: AppTokenSourceOptions = {}): AppTokenSource {
  const key = JSON.stringify([config.tokenUrl, config.clientId, config.credential, config.scope ?? '']);
  let s = shared.get(key);
  if (!s) { s = new AppTokenSource(config, opts); shared.set(key, s); }
  return s;
}
