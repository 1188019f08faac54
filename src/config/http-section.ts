// [http]: the API and console listener. Its own file so validate.ts does not grow;
// the defaults are in DEFAULTS beside every other.
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Section } from './reader.js';
import type { HttpConfig } from './types.js';
import { parseRate } from './units.js';
import { DEFAULTS, splitHostPort } from './validate.js';

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
