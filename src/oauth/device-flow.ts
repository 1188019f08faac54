// Signing in a mailbox with the OAuth2 device authorization grant (RFC 8628):
// the provider shows a code, a person approves it in any browser, and we poll
// the token endpoint until the refresh token arrives. Nothing here writes files.
import type { DelegatedOAuthConfig } from '../config/types.js';
import { oauthErrorText, postForm, type EndpointAnswer, type FetchFn } from './token-endpoint.js';

export class DeviceFlowError extends Error {}

export interface DeviceFlowOptions {
  /** One line for the person signing in (the URL and code, then progress). */
  readonly print: (line: string) => void;
  readonly clientSecret?: string;
  readonly fetch?: FetchFn;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

interface Started { deviceCode: string; intervalMs: number; expiresAt: number }

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Runs the flow to the end; resolves with the refresh token, or throws DeviceFlowError saying what to do. */
export async function deviceLogin(config: DelegatedOAuthConfig, user: string, opts: DeviceFlowOptions): Promise<string> {
  if (!config.deviceUrl) {
    throw new DeviceFlowError(`the ${config.route === 'relay' ? '[relay]' : `route ${config.route}`} section has no device authorization endpoint; add device_url = "https://…" (the provider's RFC 8628 device endpoint), or provider = "google" / "microsoft"`);
  }
  const started = await start(config, user, opts);
  return poll(config, started, opts);
}

async function start(config: DelegatedOAuthConfig, user: string, opts: DeviceFlowOptions): Promise<Started> {
  const now = opts.now ?? Date.now;
  const form: Record<string, string> = { client_id: config.clientId, ...(config.scope ? { scope: config.scope } : {}) };
  const a = await postForm(config.deviceUrl!, form, fetchOpt(opts));
  const j = a.kind === 'http' && a.status === 200 ? a.json : undefined;
  // Google still says verification_url (its pre-RFC name)
  const uri = j?.['verification_uri'] ?? j?.['verification_url'];
  if (!j || typeof j['device_code'] !== 'string' || typeof j['user_code'] !== 'string' || typeof uri !== 'string') {
    throw new DeviceFlowError(`the device authorization endpoint ${config.deviceUrl} refused: ${describe(a)}; check client_id and scope (public clients must be allowed the device flow at the provider)`);
  }
  opts.print(`To sign in ${user}, open ${uri} and enter the code ${j['user_code']}`);
  if (typeof j['verification_uri_complete'] === 'string') opts.print(`(or open ${j['verification_uri_complete']} directly)`);
  const expiresIn = Number(j['expires_in']) || 900;
  opts.print(`Waiting for the approval (the code expires in ${Math.round(expiresIn / 60)} minutes)…`);
  return { deviceCode: j['device_code'], intervalMs: (Number(j['interval']) || 5) * 1000, expiresAt: now() + expiresIn * 1000 };
}

/** RFC 8628 §3.4-3.5: poll at `interval`, +5 s on slow_down, until a token, a refusal or expiry. */
async function poll(config: DelegatedOAuthConfig, s: Started, opts: DeviceFlowOptions): Promise<string> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let interval = s.intervalMs;
  const form: Record<string, string> = { grant_type: DEVICE_GRANT, device_code: s.deviceCode, client_id: config.clientId, ...(opts.clientSecret !== undefined ? { client_secret: opts.clientSecret } : {}) };
  for (;;) {
    await sleep(interval);
    if (now() > s.expiresAt) throw new DeviceFlowError('the code expired before the sign-in was approved; run the command again and approve within the time shown');
    const a = await postForm(config.tokenUrl, form, fetchOpt(opts));
    if (a.kind === 'network' || a.status >= 500) { interval *= 2; continue; } // §3.5: back off on connection trouble
    const j = a.json;
    if (a.status === 200 && typeof j?.['access_token'] === 'string') {
      if (typeof j['refresh_token'] === 'string' && j['refresh_token']) return j['refresh_token'];
      throw new DeviceFlowError(`the provider signed in but issued no refresh token; ${config.provider === 'microsoft' || /microsoft/.test(config.tokenUrl) ? 'scope must include offline_access' : 'ask for offline access in scope'}`);
    }
    switch (j?.['error']) {
      case 'authorization_pending': continue;
      case 'slow_down': interval += 5000; continue;
      case 'expired_token': throw new DeviceFlowError('the code expired before the sign-in was approved; run the command again');
      case 'access_denied': throw new DeviceFlowError('the sign-in was declined; run the command again and approve it');
      default: throw new DeviceFlowError(`the token endpoint ${config.tokenUrl} refused: ${describe(a)}; check client_id and client_secret_file`);
    }
  }
}

function describe(a: EndpointAnswer): string {
  if (a.kind === 'network') return `cannot reach it (${a.detail})`;
  return oauthErrorText(a.json) ?? `HTTP ${a.status}`;
}

const fetchOpt = (opts: DeviceFlowOptions) => (opts.fetch ? { fetch: opts.fetch } : {});
