// `smarthost route test`: where would this mail go? Prints the route table in
// the order it is tried and, per recipient, the decision of route/choose-route.ts
// with the rule that made it. Offline: no DNS, no connection, daemon or not.
import type { Config, UpstreamConfig } from '../config/types.js';
import { cacheDir, loadPolicySync } from '../mta-sts/cache.js';
import { stsTime } from '../mta-sts/mta-sts.js';
import { stsName } from '../mta-sts/sts-policy.js';
import { formatDuration } from '../config/units.js';
import { explainRoute, type RouteTable } from '../route/choose-route.js';
import { configOrReport, EXIT, UsageError } from './common.js';
import { allPresetLines } from './preset-lines.js';

export const help = `usage: smarthost route test --from ADDR --to ADDR [--to ADDR ...] [-c FILE]
Prints the route table (first match wins, per recipient: [local] domains,
[[route]]s by recipient domain or sender, [relay], else the recipient domain's
MX hosts), then where mail from ADDR would go for each --to, and why.
  --from ADDR   the envelope sender ("" or "<>" for the null sender of bounces)
  --to ADDR     a recipient; repeat for more
For MX delivery it also shows the domain's MTA-STS policy as cached in data_dir.
Nothing is sent and nothing is looked up.`;

export interface RouteArgs { readonly config?: string; readonly from?: string; readonly to: readonly string[] }

export function run(args: RouteArgs, positionals: readonly string[]): number {
  if (positionals[0] !== 'test' || positionals.length > 1) throw new UsageError(`expected "route test", got "route ${positionals.join(' ')}"\n${help}`);
  if (args.from === undefined) throw new UsageError(`--from is required (use --from "<>" for the null sender)\n${help}`);
  if (!args.to.length) throw new UsageError(`give at least one --to address\n${help}`);
  const config = configOrReport(args.config);
  if (!config) return EXIT.CONFIG;
  process.stdout.write(routeReport(config, args.from, args.to));
  return EXIT.OK;
}

const bare = (address: string) => address.trim().replace(/^<(.*)>$/, '$1');

/** The whole printout: the table, then one decision per recipient. */
export function routeReport(config: Config, from: string, to: readonly string[]): string {
  const sender = bare(from);
  const table: RouteTable = { localDomains: config.local.domains, routes: config.routes, ...(config.relay ? { relay: config.relay } : {}) };
  return [
    `route table of ${config.source} (first match wins, per recipient):`,
    ...tableLines(config),
    ...presets(config),
    '',
    `from <${sender}>:`,
    ...to.map((t) => `  to <${bare(t)}>: ${decision(config, table, sender, bare(t))}`),
    '',
  ].join('\n');
}

/** What each preset expanded to, after the table. */
function presets(config: Config): string[] {
  const lines = allPresetLines(config);
  return lines.length ? ['', 'presets (the keys each one set; your own keys win):', ...lines] : [];
}

function decision(config: Config, table: RouteTable, sender: string, rcpt: string): string {
  const { dest, why } = explainRoute(table, sender, rcpt);
  switch (dest.kind) {
    case 'local': return `local (maildir ${config.local.maildir}) because ${why}`;
    case 'upstream': return `${dest.name === 'relay' ? 'relay' : `route ${dest.name}`} -> ${urls(dest.upstream)} because ${why}`;
    case 'mx': return `mx ${dest.domain} because ${why}\n      ${stsState(config, dest.domain)}`;
  }
}

/** The domain's MTA-STS policy as the daemon cached it (route test looks nothing up itself). */
function stsState(config: Config, domain: string): string {
  if (!config.mx.mtaSts) return 'MTA-STS: not applied ([mx] mta_sts = false)';
  const name = stsName(domain);
  if (!name) return 'MTA-STS: does not apply to an address literal';
  const p = loadPolicySync(cacheDir(config.dataDir), name);
  if (!p) return `MTA-STS: no policy cached for ${name}; _mta-sts.${name} is looked up at the next delivery`;
  if (p.expiresAt <= Date.now()) return `MTA-STS: the cached policy of ${name} (id ${p.id}) expired at ${stsTime(p.expiresAt)}; it is looked up again at the next delivery`;
  return `MTA-STS: mode ${p.mode}, id ${p.id}, mx ${p.mx.join(', ') || '(none)'}, cached until ${stsTime(p.expiresAt)} (fetched ${stsTime(p.fetchedAt)})`;
}

/** "smtp://a:587, smtp://b:587 (fallback smtp://c:25)" */
function urls(u: UpstreamConfig): string {
  const primary = (u.urls ?? [u]).map((x) => x.url).join(', ');
  const fallback = (u.fallbackUrls ?? []).map((x) => x.url).join(', ');
  return fallback ? `${primary} (fallback ${fallback})` : primary;
}

function upstreamFacts(u: UpstreamConfig): string {
  const quota = u.quota ? ` quota=${u.quota.count}/${formatDuration(u.quota.windowMs)}` : '';
  return `${urls(u)} tls=${u.tls} user=${u.username ?? '-'}${quota}`;
}

function tableLines(config: Config): string[] {
  const rows: Array<[string, string, string]> = [
    ['local', `domains ${config.local.domains.join(', ') || '(none)'}`, `maildir ${config.local.maildir}`],
    ...config.routes.map((r): [string, string, string] => [
      `route ${r.name}`,
      [r.domains.length ? `domains ${r.domains.join(', ')}` : '', r.senders.length ? `senders ${r.senders.join(', ')}` : ''].filter(Boolean).join('; '),
      upstreamFacts(r),
    ]),
    config.relay ? ['relay', 'everything else', upstreamFacts(config.relay)] : ['mx', 'everything else', `MX hosts of the recipient domain, tls=${config.mx.tls}`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([name, match, target], i) => `  ${i + 1}. ${name.padEnd(w0)}  ${match.padEnd(w1)}  -> ${target}`);
}
