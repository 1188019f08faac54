// [http]: the API and console listener. Its own file so validate.ts does not grow;
// the defaults are in DEFAULTS beside every other.
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Section } from './reader.js';
import type { HttpConfig, WebhookConfig } from './types.js';
import { parseRate } from './units.js';
import { splitHostPort } from './cidr.js';
import { DEFAULTS } from './defaults.js';

const KEYS = ['address', 'tls', 'allow_plaintext', 'tokens_file', 'auth_failures'];

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback';
}

export function readHttp(s: Section, ctx: { dataDir: string; abs: (p: string) => string; messageSize: number }): HttpConfig | undefined {
  const address = s.string('address', DEFAULTS.http);
  const tls = s.bool('tls', false);
  const allowPlaintext = s.bool('allow_plaintext', false);
  const tokensFile = ctx.abs(s.string('tokens_file') ?? path.join(ctx.dataDir, 'api-tokens'));
  let authFailures = parseRate(s.raw('auth_failures') ?? DEFAULTS.httpAuthFailures);
  if (typeof authFailures === 'string') {
    s.problem('auth_failures', `${s.at('auth_failures')}: ${authFailures}`, `write auth_failures = "${DEFAULTS.httpAuthFailures}"`);
    authFailures = parseRate(DEFAULTS.httpAuthFailures) as Exclude<typeof authFailures, string>;
  }
  s.finish(KEYS);
  const hp = splitHostPort(address);
  if (!hp || !hp.host) {
    s.problem('address', `${s.at('address')} = "${address}" is not host:port`, `write address = "${DEFAULTS.http}"`);
    return undefined;
  }
  if (!tls && !allowPlaintext && !isLoopback(hp.host)) {
    // tokens and mail would cross the network in clear
    s.problem('address', `${s.at('address')} = "${address}" is not a loopback address, and [http] has no TLS`,
      'set tls = true (the [tls] certificate is used), or allow_plaintext = true if a TLS proxy in front of it terminates HTTPS');
    return undefined;
  }
  // a JSON message carries the mail base64-encoded (4/3) plus its fields
  const bodyLimit = Math.ceil(ctx.messageSize * 4 / 3) + 1_000_000;
  return Object.freeze({ address, host: hp.host, port: hp.port, tls, allowPlaintext, tokensFile, bodyLimit, authFailures: Object.freeze(authFailures) });
}

const WEBHOOK_EVENTS = ['delivered', 'deferred', 'bounced', 'delayed', 'suppressed'] as const;

/** One [[webhook]]: an http(s) URL (plain http only to loopback), the events wanted, the HMAC secret's file. */
export function readWebhook(s: Section, abs: (p: string) => string): WebhookConfig | undefined {
  const url = s.string('url');
  const events = s.strings('events', ['delivered', 'deferred', 'bounced', 'delayed']);
  const secretFile = s.string('secret_file');
  const timeoutMs = s.duration('timeout', 10_000, '10s');
  s.finish(['url', 'events', 'secret_file', 'timeout']);
  for (const e of events) {
    if (!(WEBHOOK_EVENTS as readonly string[]).includes(e)) s.problem('events', `"${e}" in ${s.at('events')} is not an event`, `use some of ${WEBHOOK_EVENTS.join(', ')}`);
  }
  if (secretFile === undefined) s.problem('secret_file', `${s.path} has no secret_file (receivers check each event's signature with it)`, 'write secret_file = "/etc/smarthost/webhook.secret" (a file with a long random string, mode 0600)');
  let u: URL | undefined;
  try { u = url === undefined ? undefined : new URL(url); } catch { u = undefined; }
  if (!u || !['http:', 'https:'].includes(u.protocol)) {
    s.problem('url', `${s.at('url')} ${url === undefined ? 'is missing' : `= "${url}" is not an http(s) URL`}`, 'write url = "https://hooks.example.com/mail"');
    return undefined;
  }
  if (u.protocol === 'http:' && !isLoopback(u.hostname.replace(/^\[|\]$/g, ''))) {
    s.problem('url', `${s.at('url')} = "${url}" sends delivery events (addresses) in clear over the network`, `write url = "https://${u.host}${u.pathname}"`);
  }
  if (timeoutMs === 0) s.problem('timeout', `${s.at('timeout')} cannot be 0`, 'write timeout = "10s"');
  if (secretFile === undefined) return undefined;
  return Object.freeze({ url, events: Object.freeze(events as WebhookConfig['events']), secretFile: abs(secretFile), timeoutMs }) as WebhookConfig;
}
