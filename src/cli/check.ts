// `smarthost check`: validate the config and the environment it needs, print
// every problem with its fix, exit 1 on errors (warnings alone exit 0). Works
// with the daemon stopped; the environment checks live in check-environment.ts.
import { formatDuration } from '../config/units.js';
import type { Pool } from 'pg';
import type { Config, UpstreamConfig } from '../config/types.js';
import { dkimChecks } from './check-dkim.js';
import { queueStoreCheck, storePool } from './check-queue.js';
import { environmentFindings, readAliasesFile, type Finding } from './check-environment.js';
import { configOrReport, EXIT } from './common.js';
import { allPresetLines } from './preset-lines.js';
import { senderDomainReport } from '../probe/sender-domains.js';
import { readLedger } from '../qmgr/quota-gate.js';

export const help = `usage: smarthost check [-c FILE]
Validates smarthost.toml (syntax, unknown keys, values) and the environment:
certificates and keys (server and client), secret file permissions, data
directory, Maildir folder, aliases file, the queue database ([queue] store:
its schema version and whether the role can write), whether each listen address can be
bound, and whether each [[dkim]] key is published in DNS (asked of [mx]
nameservers or the system resolver; no answer is a warning). Shows what each
preset expands to, and looks up SPF and DMARC of the sender domains (warnings
only). Exit 1 on errors; warnings alone exit 0.`;

export async function run(opts: { config?: string }): Promise<number> {
  const config = configOrReport(opts.config);
  if (!config) return EXIT.ERROR;
  const notes: Finding[] = [];
  const pool = await storePool(config);
  const [environment, domains, quotas, dkim, store] = await Promise.all([environmentFindings(config), senderDomainReport(config),
    quotaLines(config, pool, (m) => notes.push({ level: 'warning', message: m, fix: 'nothing to do: the daemon counts every quota as used up for one window, then writes the file anew' })),
    dkimChecks(config), queueStoreCheck(config, pool)]).finally(() => pool?.end().catch(() => undefined));
  const findings = [...environment, ...store.findings, ...dkim.findings, ...notes, ...domains.findings];
  for (const f of findings) process.stderr.write(`${f.level}: ${f.message}\n    fix: ${f.fix}\n`);
  process.stdout.write(summary(config, findings, [...store.lines, ...dkim.lines, ...quotas, ...domains.summary]));
  return findings.some((f) => f.level === 'error') ? EXIT.ERROR : EXIT.OK;
}

/** The effective config in a few lines, headed by the verdict. */
function summary(config: Config, findings: readonly Finding[], extra: readonly string[]): string {
  return [
    `configuration ${config.source}: ${verdict(findings)}`,
    `  hostname ${config.hostname}, data_dir ${config.dataDir}`,
    ...(config.overrides?.length ? [`  from the environment: ${config.overrides.map((o) => `${o.name}=${o.value}`).join(', ')}`] : []),
    ...config.listen.map((l) => `  listen ${l.address} tls=${l.tls} auth=${l.auth} trusted=${l.trustedNetworks.map((n) => n.text).join(',') || 'none'}`),
    `  relay ${config.relay ? upstreamLine(config.relay) : 'none (direct MX delivery)'}`,
    ...config.routes.map((r) => `  route ${r.name}: ${[...r.domains, ...r.senders].join(', ')} -> ${upstreamLine(r)}`),
    ...allPresetLines(config),
    `  local domains ${config.local.domains.join(', ')} -> ${config.local.maildir}`,
    localUsersLine(config),
    rewriteLine(config),
    ...extra,
    `  limits message_size=${config.limits.messageSize} recipients=${config.limits.recipients} connections=${config.limits.connections}/${config.limits.connectionsPerIp} per ip, idle_timeout=${formatDuration(config.limits.idleTimeoutMs)}`,
    '',
  ].join('\n');
}

/** "smtp://a:587, smtp://b:587 fallback_urls smtp://c:587 tls=verify user=x auth=oauth2 (google)" (or "(microsoft, app-only)"): every URL delivery may use. */
function upstreamLine(u: UpstreamConfig): string {
  const urls = (u.urls?.length ? u.urls : [u]).map((x) => x.url).join(', ');
  const fallback = u.fallbackUrls?.length ? ` fallback_urls ${u.fallbackUrls.map((x) => x.url).join(', ')}` : '';
  const app = u.oauth?.grant === 'client_credentials' ? `, app-only${u.oauth.loginAs === 'sender' ? ', login_as=sender' : ''}` : '';
  const oauth = u.oauth ? ` auth=oauth2 (${u.oauth.provider ?? `token_url ${u.oauth.tokenUrl}`}${app})` : '';
  const limits = `${u.rate ? ` rate=${u.rate.count}/${formatDuration(u.rate.windowMs)}` : ''}${u.quota ? ` quota=${u.quota.count}/${formatDuration(u.quota.windowMs)}` : ''}`;
  return `${urls}${fallback} tls=${u.tls}${u.username ? ` user=${u.username}` : ''}${oauth}${limits}`;
}

/** "  quota route m365: 12 of 10000 recipients used in the last 1d": what data_dir/quota.json holds now. */
async function quotaLines(config: Config, pool: Pool | undefined, warn: (m: string) => void): Promise<string[]> {
  const ups = [...config.routes.map((r) => ({ key: `route:${r.name}`, label: `route ${r.name}`, quota: r.quota })),
    ...(config.relay ? [{ key: 'relay', label: '[relay]', quota: config.relay.quota }] : [])];
  const limited = ups.filter((u) => u.quota);
  if (!limited.length) return [];
  const used = await quotaCounter(config, pool, warn);
  const lines: string[] = [];
  try {
    for (const { key, label, quota } of limited) {
      lines.push(`  quota ${label}: ${Math.min(await used.count(key, quota!.windowMs), quota!.count)} of ${quota!.count} recipients used in the last ${formatDuration(quota!.windowMs)}`);
    }
  } catch (e) {
    warn(`cannot read the quota counts: ${(e as Error).message}`);
  } finally {
    await used.close();
  }
  return lines;
}

/** Where the daemon counts quotas: data_dir/quota.json, or on a shared store its database (every node's counts). */
async function quotaCounter(config: Config, pool: Pool | undefined, warn: (m: string) => void): Promise<{ count(key: string, windowMs: number): Promise<number>; close(): Promise<void> }> {
  if (!pool) {
    const ledger = await readLedger(config.dataDir, warn);
    const now = Date.now();
    return { count: async (key, windowMs) => ledger.used(key, windowMs, now), close: async () => undefined };
  }
  const [{ PgQuotaCounts }, { Outage }] = await Promise.all([import('../queue/pg-limits-quota.js'), import('../queue/pg-limits-common.js')]);
  const counts = new PgQuotaCounts(pool, new Outage(() => undefined)); // (only the counts: no holds to renew, nothing to close but the pool, run()'s)
  return { count: (key, windowMs) => counts.used(key, windowMs), close: async () => undefined };
}

function verdict(findings: readonly Finding[]): string {
  const count = (level: Finding['level']) => findings.filter((f) => f.level === level).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const errors = count('error');
  const warnings = count('warning');
  const head = errors ? plural(errors, 'error') : 'OK';
  return warnings ? `${head}, ${plural(warnings, 'warning')}` : head;
}

/** "  local users alice, bob, aliases 2 + 14 in /etc/aliases" */
function localUsersLine(config: Config): string {
  const { users, aliases, aliasesFile } = config.local;
  const who = users ? users.join(', ') || '(none besides root and postmaster)' : 'the accounts in /etc/passwd';
  let fromFile = '';
  if (aliasesFile !== undefined) {
    const table = readAliasesFile(aliasesFile);
    fromFile = ` + ${'error' in table ? '?' : table.entries.size} in ${aliasesFile}`;
  }
  return `  local users ${who}, aliases ${Object.keys(aliases).length}${fromFile}`;
}

function rewriteLine(config: Config): string {
  const rules = Object.entries(config.rewrite.senders).map(([from, to]) => `${from} -> ${to}`);
  return `  rewrite senders ${rules.join(', ') || 'none'}`;
}
