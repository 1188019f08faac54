// `smarthost probe [ROUTE]`: walk one upstream step by step and say where and why it fails.
// Works offline from the daemon (it opens its own connection). Exit 0 only when every step
// passed (for a route with several URLs: on at least one primary URL), 1 otherwise, 64 for
// usage errors, 78 for an invalid config.
import { parseDuration } from '../config/units.js';
import { probe } from '../probe/steps.js';
import { formatJson, formatRouteText, formatText } from '../probe/report.js';
import { hasSeveralUrls, probeRoute } from '../probe/url-walk.js';
import { probeSenderDomainLines } from '../probe/sender-domains.js';
import { chooseTarget, probeSender } from '../probe/target.js';
import { configOrReport, EXIT, UsageError } from './common.js';

export const help = `usage: smarthost probe [ROUTE] [--url URL] [--from ADDR] [--send-test ADDR] [--json] [--timeout 10s] [-c FILE]
Walks an upstream step by step: DNS, connect, greeting, EHLO, STARTTLS or TLS,
certificate, AUTH (password, or an OAuth2 token with auth = "oauth2"), MAIL FROM
(and RCPT TO + a test message with --send-test), printing ✓/✗ per step with the
server's reply, a diagnosis and a fix; then SPF and DMARC of the sender's domain. A route with a url list and fallback_urls
gets one section per URL, in the order delivery tries them.
  ROUTE             "relay" (the default when [relay] exists) or a [[route]] name
  --url URL         probe smtp://host:port (tls "may") or smtps://host:port (tls "verify"), no credentials
  --from ADDR       sender for MAIL FROM (default postmaster@hostname, through [rewrite] senders)
  --send-test ADDR  also send a short test message to ADDR
  --json            print one JSON object { ok, target, steps: [...] }, or for several
                    URLs { ok, route, first, targets: [{ role, target, steps }, ...] }
  --timeout DUR     for the connection and each reply (default 10s)
Exit 0 when every step passed (with several URLs: on at least one primary URL),
1 otherwise.`;

export interface ProbeArgs {
  config?: string; json?: boolean; url?: string; from?: string; sendTest?: string; timeout?: string;
}

/** An envelope address as the user typed it: no brackets, spaces or control characters. */
function checkAddress(option: string, value: string, needAt: boolean): string {
  const v = value.trim().replace(/^<(.*)>$/, '$1');
  if (!v || /[\s<>()[\]\\,;:"\x00-\x1f\x7f]/.test(v) || (needAt && !/^[^@]+@[^@]+$/.test(v))) {
    throw new UsageError(`${option} "${value}" is not an address; write e.g. ${option} you@example.com`);
  }
  return v;
}

export async function run(opts: ProbeArgs, positionals: string[]): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`one ROUTE at most, got ${positionals.join(' ')}\n${help}`);
  const timeoutMs = parseDuration(opts.timeout ?? '10s');
  if (typeof timeoutMs === 'string' || timeoutMs <= 0) throw new UsageError(`--timeout ${typeof timeoutMs === 'string' ? timeoutMs : 'must be more than 0'}`);
  const from = opts.from !== undefined ? checkAddress('--from', opts.from, false) : undefined;
  const sendTest = opts.sendTest !== undefined ? checkAddress('--send-test', opts.sendTest, true) : undefined;
  const config = configOrReport(opts.config);
  if (!config) return EXIT.CONFIG;
  const choice = chooseTarget(config, positionals[0], opts.url);
  if ('usage' in choice) throw new UsageError(choice.usage);
  const probeOpts = { ehloName: config.hostname, ...probeSender(config, from), timeoutMs, ...(sendTest ? { sendTest } : {}) };
  if (hasSeveralUrls(choice.target.upstream)) {
    const [route, domainLines] = await Promise.all([probeRoute(choice.target, probeOpts),
      opts.json ? [] : probeSenderDomainLines(config, probeOpts.sender, choice.target.upstream, choice.target.section)]);
    process.stdout.write(opts.json ? formatJson(route) : formatRouteText(route) + domainLines.map((l) => `${l}\n`).join(''));
    return route.ok ? EXIT.OK : EXIT.ERROR;
  }
  const [report, domainLines] = await Promise.all([probe(choice.target, probeOpts),
    opts.json ? [] : probeSenderDomainLines(config, probeOpts.sender, choice.target.upstream, choice.target.section)]);
  process.stdout.write(opts.json ? formatJson(report) : formatText(report) + domainLines.map((l) => `${l}\n`).join(''));
  return report.ok ? EXIT.OK : EXIT.ERROR;
}
