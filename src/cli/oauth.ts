// `smarthost oauth login ROUTE`: sign a mailbox in with the provider's device
// code flow and save the refresh token to the upstream's refresh_token_file.
// Works with the daemon running or not: the daemon reads the file at its next refresh.
import type { Config, UpstreamConfig } from '../config/types.js';
import { DeviceFlowError, deviceLogin } from '../oauth/device-flow.js';
import { readFirstLine, writeSecretFile } from '../oauth/secret-file.js';
import { EXIT, UsageError, configOrReport } from './common.js';

export const help = `usage: smarthost oauth login [ROUTE] [-c FILE]
Signs in the mailbox of an upstream with auth = "oauth2" ("relay" for [relay], the
default, or a [[route]]'s name): open the URL shown, enter the code, approve.
The refresh token is saved to refresh_token_file (mode 0600); smarthost uses it
from the next delivery, running or not. Routes with grant = "client_credentials"
(app-only tokens) need no sign-in.`;

function upstream(config: Config, route: string): UpstreamConfig {
  const found = route === 'relay' ? config.relay : config.routes.find((r) => r.name === route);
  if (found) return found;
  const names = [...(config.relay ? ['relay'] : []), ...config.routes.map((r) => r.name)];
  throw new UsageError(`no upstream named "${route}" in ${config.source}${names.length ? `; known: ${names.join(', ')}` : ''}`);
}

export async function run(opts: { config?: string }, args: string[]): Promise<number> {
  const [sub, route = 'relay', ...extra] = args;
  if (sub !== 'login' || extra.length) throw new UsageError(help);
  const config = configOrReport(opts.config);
  if (!config) return EXIT.CONFIG;
  const u = upstream(config, route);
  if (!u.oauth || u.username === undefined) {
    process.stderr.write(`smarthost oauth: ${route === 'relay' ? '[relay]' : `route ${route}`} does not use auth = "oauth2"; add auth = "oauth2", provider, client_id and refresh_token_file there first\n`);
    return EXIT.CONFIG;
  }
  const o = u.oauth;
  if (o.grant === 'client_credentials') {
    const proof = o.credential.kind === 'secret' ? `client_secret_file ${o.credential.file}` : `the certificate ${o.credential.certificate}`;
    process.stdout.write(`${route === 'relay' ? '[relay]' : `route ${route}`} uses grant = "client_credentials": nothing to sign in. ` +
      `App-only tokens need no person and no refresh token; smarthost asks for one with ${proof} when it delivers. ` +
      `Check the set-up with "smarthost probe ${route}".\n`);
    return EXIT.OK;
  }
  let clientSecret: string | undefined;
  try { clientSecret = o.clientSecretFile === undefined ? undefined : readFirstLine(o.clientSecretFile); } catch (e) {
    process.stderr.write(`smarthost oauth: cannot read client_secret_file ${o.clientSecretFile}: ${(e as Error).message}\n`);
    return EXIT.NOINPUT;
  }
  let token: string;
  try {
    token = await deviceLogin(o, u.username, { print: (l) => process.stdout.write(`${l}\n`), ...(clientSecret !== undefined ? { clientSecret } : {}) });
  } catch (e) {
    if (!(e instanceof DeviceFlowError)) throw e;
    process.stderr.write(`smarthost oauth: ${e.message}\n`);
    return EXIT.ERROR;
  }
  try { writeSecretFile(o.refreshTokenFile, token); } catch (e) {
    process.stderr.write(`smarthost oauth: signed in, but cannot write refresh_token_file ${o.refreshTokenFile}: ${(e as Error).message}; create its directory or fix its permissions, then run this again\n`);
    return EXIT.CANTCREAT;
  }
  process.stdout.write(`Saved the refresh token for ${u.username} to ${o.refreshTokenFile} (mode 0600). ` +
    `smarthost uses it from the next delivery; "smarthost queue flush" retries deferred mail now.\n`);
  return EXIT.OK;
}
