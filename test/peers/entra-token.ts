// The client-credentials grant of a test token endpoint, checked as Microsoft Entra checks it
// (learn.microsoft.com "certificate credentials" and "client credentials flow"): form fields,
// scope ending in /.default, exactly one credential; for a certificate, the JWT's header (alg
// PS256 with x5t#S256, or RS256 with x5t; typ JWT), its claims (aud = this endpoint, iss = sub
// = client_id, a jti not seen before, nbf/exp around now) and its signature, verified with the
// registered certificate's public key. Refusals carry Microsoft's JSON shape and AADSTS codes.
// Written apart from src/oauth/client-assertion.ts so that the two cannot share a mistake.
import crypto from 'node:crypto';

export interface EntraApp {
  /** The client secret registered for the app. */
  readonly secret?: string;
  /** PEM of the certificate uploaded to the app registration. */
  readonly certificate?: string;
  /** Application permissions in the token (default ["SMTP.SendAsApp"], as after admin consent). */
  readonly roles?: readonly string[];
}

export type Answer = [number, Record<string, unknown>];

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SKEW_S = 300;

/** Microsoft's error body: error, "AADSTSnnn: text" with trace lines, error_codes. */
export function entraError(status: number, error: string, code: number, text: string): Answer {
  const trace = crypto.randomUUID();
  return [status, {
    error, error_description: `AADSTS${code}: ${text} Trace ID: ${trace} Correlation ID: ${crypto.randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code], timestamp: new Date().toISOString(), trace_id: trace, correlation_id: crypto.randomUUID(), error_uri: 'https://login.microsoftonline.com/error?code=' + code,
  }];
}

const b64json = (part: string): Record<string, unknown> | undefined => {
  try { const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); return typeof v === 'object' && v !== null ? v as Record<string, unknown> : undefined; } catch { return undefined; }
};

/** Checks a client_assertion; undefined when Microsoft would take it. `seen` holds used jti values. */
export function checkAssertion(jwt: string, app: EntraApp, clientId: string, audience: string, seen: Set<string>, nowS: number): Answer | undefined {
  const invalid = (code: number, text: string) => entraError(401, 'invalid_client', code, text);
  const parts = jwt.split('.');
  const header = parts.length === 3 ? b64json(parts[0]!) : undefined;
  const claims = parts.length === 3 ? b64json(parts[1]!) : undefined;
  if (!header || !claims) return entraError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
  if (header['typ'] !== 'JWT') return entraError(400, 'invalid_request', 50027, `JWT header typ must be JWT, got ${String(header['typ'])}.`);
  if (!app.certificate) return invalid(700027, 'Client assertion failed signature validation: no certificate is registered on the application.');
  const cert = new crypto.X509Certificate(app.certificate);
  const pss = header['alg'] === 'PS256';
  if (!pss && header['alg'] !== 'RS256') return invalid(700027, `Client assertion algorithm ${String(header['alg'])} is not supported.`);
  const thumbprint = pss ? header['x5t#S256'] : header['x5t'];
  const expected = crypto.createHash(pss ? 'sha256' : 'sha1').update(cert.raw).digest('base64url');
  if (thumbprint !== expected) return invalid(700027, `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${String(thumbprint)}']`);
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), pss
    ? { key: cert.publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : { key: cert.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(parts[2]!, 'base64url'));
  if (!ok) return invalid(700027, 'Client assertion failed signature validation.');
  if (claims['iss'] !== clientId || claims['sub'] !== clientId) return invalid(700021, 'Client assertion application identifier doesn\'t match \'client_id\' parameter.');
  if (claims['aud'] !== audience) return invalid(700023, 'Client assertion audience claim does not match Realm issuer.');
  const nbf = Number(claims['nbf']);
  const exp = Number(claims['exp']);
  if (!Number.isFinite(exp) || !Number.isFinite(nbf) || nbf > nowS + SKEW_S || exp < nowS - SKEW_S || exp <= nbf) {
    return invalid(700024, 'Client assertion is not within its valid time range.');
  }
  const jti = claims['jti'];
  if (typeof jti !== 'string' || !jti || seen.has(jti)) return invalid(700027, 'Client assertion contains a missing or already used jti.');
  seen.add(jti);
  return undefined;
}

/** The form of a client-credentials request, checked field by field; undefined when it passes. */
export function checkClientCredentials(form: Record<string, string>, app: EntraApp, clientId: string, audience: string, seen: Set<string>, nowS: number): Answer | undefined {
  if (form['client_id'] !== clientId) return entraError(400, 'unauthorized_client', 700016, `Application with identifier '${form['client_id'] ?? ''}' was not found in the directory.`);
  const scope = form['scope'];
  if (!scope) return entraError(400, 'invalid_request', 900144, 'The request body must contain the following parameter: \'scope\'.');
  if (!/^\S+\/\.default$/.test(scope)) return entraError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  const hasSecret = form['client_secret'] !== undefined;
  const hasAssertion = form['client_assertion'] !== undefined || form['client_assertion_type'] !== undefined;
  if (hasSecret && hasAssertion) return entraError(400, 'invalid_request', 90014, 'Only one of client_secret and client_assertion may be sent.');
  if (!hasSecret && !hasAssertion) return entraError(401, 'invalid_client', 7000218, 'The request body must contain the following parameter: \'client_assertion\' or \'client_secret\'.');
  if (hasSecret) return app.secret !== undefined && form['client_secret'] === app.secret ? undefined : entraError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
  if (form['client_assertion_type'] !== ASSERTION_TYPE) return entraError(400, 'invalid_request', 50027, `client_assertion_type must be ${ASSERTION_TYPE}.`);
  return checkAssertion(form['client_assertion'] ?? '', app, clientId, audience, seen, nowS);
}

/** An access token shaped like Exchange Online's (a JWT whose claims a client may read; the signature is not checked here). */
export function appAccessToken(scope: string, roles: readonly string[], clientId: string, expS: number): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const aud = scope.replace(/\/\.default$/, '');
  return `${part({ typ: 'JWT', alg: 'RS256' })}.${part({ aud, roles, appid: clientId, exp: expS, uti: crypto.randomBytes(9).toString('base64url') })}.${crypto.randomBytes(32).toString('base64url')}`;
}

export interface EntraTenant {
  /** Client-credentials requests answered; `error` is the AADSTS code of a refusal. */
  readonly grants: Array<{ form: Record<string, string>; ok: boolean; error?: number }>;
  /** Answers one client-credentials request sent to `audience` (the token endpoint's URL). */
  grant(form: Record<string, string>, audience: string): Answer;
  /** Answers it with HTTP 500, as an outage would. */
  fail(form: Record<string, string>): Answer;
  issued(accessToken: string): boolean;
  /** Exchange Online's check at AUTH: unexpired, for Exchange, with SMTP.SendAsApp, and the mailbox permission. */
  valid(user: string, accessToken: string): boolean;
  revoke(): void;
}

/** One app registration in one tenant, and the mailboxes its service principal may use (Add-MailboxPermission). */
export function entraTenant(o: { clientId: string; expiresIn: number; app: EntraApp; mailboxes: readonly string[] }): EntraTenant {
  const grants: EntraTenant['grants'] = [];
  const tokens = new Map<string, { expires: number; aud: string; roles: readonly string[] }>();
  const jtis = new Set<string>();
  return {
    grants,
    grant(form, audience) {
      const refused = checkClientCredentials(form, o.app, o.clientId, audience, jtis, Math.floor(Date.now() / 1000));
      if (refused) {
        const codes = refused[1]['error_codes'];
        grants.push({ form, ok: false, ...(Array.isArray(codes) ? { error: codes[0] as number } : {}) });
        return refused;
      }
      const roles = o.app.roles ?? ['SMTP.SendAsApp'];
      const access = appAccessToken(form['scope']!, roles, o.clientId, Math.floor(Date.now() / 1000) + o.expiresIn);
      tokens.set(access, { expires: Date.now() + o.expiresIn * 1000, aud: form['scope']!.replace(/\/\.default$/, ''), roles });
      grants.push({ form, ok: true });
      return [200, { token_type: 'Bearer', expires_in: o.expiresIn, ext_expires_in: o.expiresIn, access_token: access }];
    },
    fail(form) { grants.push({ form, ok: false }); return [500, { error: 'server_error' }]; },
    issued: (accessToken) => tokens.has(accessToken),
    valid(user, accessToken) {
      const t = tokens.get(accessToken);
      return t !== undefined && t.expires > Date.now() && t.aud === 'https://outlook.office365.com' && t.roles.includes('SMTP.SendAsApp')
        && o.mailboxes.some((m) => m.toLowerCase() === user.toLowerCase());
    },
    revoke() { tokens.clear(); },
  };
}
