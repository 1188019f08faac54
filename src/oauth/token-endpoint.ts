// One form POST to an OAuth2 endpoint (RFC 6749 §4.1.3/§6, RFC 8628 §3.1/§3.4)
// and its answer as data. Node's fetch is enough: no redirects, no cookies.
export type FetchFn = typeof fetch;

export type EndpointAnswer =
  /** HTTP answered; `json` is the body when it parsed as a JSON object. */
  | { readonly kind: 'http'; readonly status: number; readonly json: Readonly<Record<string, unknown>> | undefined }
  /** No HTTP answer: connection refused, DNS, TLS, or no answer in time. */
  | { readonly kind: 'network'; readonly detail: string };

export async function postForm(url: string, form: Record<string, string>, opts: { fetch?: FetchFn; timeoutMs?: number } = {}): Promise<EndpointAnswer> {
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
  } catch (e) {
    return { kind: 'network', detail: networkDetail(e) };
  }
  let json: Record<string, unknown> | undefined;
  try {
    const v: unknown = await res.json();
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) json = v as Record<string, unknown>;
  } catch { /* not JSON: an HTML error page from a proxy, for instance */ }
  return { kind: 'http', status: res.status, json };
}

/** fetch says only "fetch failed"; the reason is in `cause` (ECONNREFUSED, ENOTFOUND, a certificate error). */
function networkDetail(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

/** The RFC 6749 §5.2 error of an answer, as "invalid_grant (Token has been expired or revoked)". */
export function oauthErrorText(json: Readonly<Record<string, unknown>> | undefined): string | undefined {
  if (typeof json?.['error'] !== 'string') return undefined;
  const desc = typeof json['error_description'] === 'string' ? ` (${json['error_description'].replace(/\s+/g, ' ').trim()})` : '';
  return `${json['error']}${desc}`;
}
