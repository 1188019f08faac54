// The SASL initial responses that carry an OAuth2 bearer token, and the error
// challenge a server sends back when it refuses one.
// XOAUTH2: Google's and Microsoft's format; OAUTHBEARER: RFC 7628 §3.1.

const SOH = '\x01';

export function xoauth2Response(user: string, token: string): string {
  return Buffer.from(`user=${user}${SOH}auth=Bearer ${token}${SOH}${SOH}`, 'utf8').toString('base64');
}

/** RFC 7628 §3.1: gs2 header "n,a=USER," (RFC 5801 escapes "," and "=") then key/value pairs. */
export function oauthBearerResponse(user: string, host: string, port: number, token: string): string {
  const authzid = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  return Buffer.from(`n,a=${authzid},${SOH}host=${host}${SOH}port=${port}${SOH}auth=Bearer ${token}${SOH}${SOH}`, 'utf8').toString('base64');
}

/** RFC 7628 §3.2.3: the client answers an error challenge with a single %x01 to end the exchange. */
export const OAUTHBEARER_ABORT = Buffer.from(SOH).toString('base64');

/** "334 eyJzdGF0dXMiOiI0MDAi…" -> 'status 400, scope https://mail.google.com/', or undefined. */
export function describeErrorChallenge(reply: string): string | undefined {
  const m = /^334[ -](\S+)/.exec(reply.trim());
  if (!m) return undefined;
  try {
    const v = JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')) as Record<string, unknown>;
    const parts = ['status', 'scope', 'schemes'].filter((k) => typeof v[k] === 'string').map((k) => `${k} ${String(v[k])}`);
    return parts.length ? parts.join(', ') : undefined;
  } catch {
    return undefined;
  }
}
