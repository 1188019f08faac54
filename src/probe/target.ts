// Which upstream `smarthost probe` walks: "relay", a [[route]] by name, or an ad-hoc --url
// (tls "may" for smtp://, "verify" for smtps://, no credentials). Also the sender that
// delivery would use for a probe's MAIL FROM. Pure: the config is already validated.
import type { Config } from '../config/types.js';
import { upstreamFromUrl } from '../config/upstream-section.js';
import { rewriteAddress } from '../smtp/sender-rewrite.js';
import type { ProbeTarget } from './steps.js';

/** A target, or the sentence a usage error prints. */
export type TargetChoice = { readonly target: ProbeTarget } | { readonly usage: string };

function adHoc(url: string): TargetChoice {
  const upstream = upstreamFromUrl(url);
  if ('error' in upstream) return { usage: `--url ${upstream.error}; ${upstream.fix.replace(/\burl = /, '--url ').replace(/"/g, '')}` };
  return { target: { name: url, section: 'the [relay] or [[route]] for this upstream', upstream } };
}

export function chooseTarget(config: Config, route: string | undefined, url: string | undefined): TargetChoice {
  if (route !== undefined && url !== undefined) return { usage: 'give either a ROUTE or --url, not both' };
  if (url !== undefined) return adHoc(url);
  const names = [...(config.relay ? ['relay'] : []), ...config.routes.map((r) => r.name)];
  if (route === undefined || route === 'relay') {
    if (config.relay) return { target: { name: 'relay', section: '[relay]', upstream: config.relay } };
    const routes = config.routes.length ? `; routes: ${config.routes.map((r) => r.name).join(', ')}` : '';
    return { usage: `${config.source} has no [relay]: give a ROUTE name or --url smtp://host:port to probe${routes}` };
  }
  const found = config.routes.find((r) => r.name === route);
  if (found) return { target: { name: route, section: `[[route]] "${route}"`, upstream: found } };
  return { usage: `no route named "${route}" in ${config.source}${names.length ? `; known: ${names.join(', ')}` : ''}` };
}

/** MAIL FROM for the probe: --from or postmaster@hostname, through [rewrite] senders as delivery does. */
export function probeSender(config: Config, from: string | undefined): { sender: string; originalSender: string } {
  const given = from ?? 'postmaster';
  const originalSender = given.includes('@') ? given : `${given}@${config.hostname}`;
  return { sender: rewriteAddress(originalSender, { map: config.rewrite.senders, hostname: config.hostname }), originalSender };
}
