// `smarthost import postfix DIR`: reads main.cf, master.cf and the maps they
// name, as Postfix would, and maps them to an ImportedConfig plus a report of
// every setting carried over or not. Listeners are in postfix-listen.ts,
// upstreams in postfix-upstreams.ts and postfix-routes.ts; here are the
// defaults, host names, local delivery, sender rewriting and the leftovers.
import fs from 'node:fs';
import path from 'node:path';
import { ImportInputError, messageSize, type Ctx, type HostFacts, type ImportOptions } from './context.js';
import type { ImportedConfig } from './model.js';
import { MainCf, parseMainCf, type Param } from './postfix-main-cf.js';
import { parseMasterCf, type MasterService } from './postfix-master-cf.js';
import { isTextSourced, parseMapRef } from './postfix-maps.js';
import { listeners, serverTls } from './postfix-listen.js';
import { routes, unusedTlsEntries } from './postfix-routes.js';
import { readTable, readTables, relay, globalLevel } from './postfix-upstreams.js';
import { ImportReport } from './import-report.js';
import { SetupFiles } from './setup-files.js';
import { skipLeftovers } from './postfix-leftovers.js';
import { cyrusUsers } from './postfix-sasl.js';

export const POSTFIX_DIR = '/etc/postfix';

function readRequired(files: SetupFiles, name: string): { text: string; actual: string } {
  const file = path.join(files.dir, name);
  try {
    return { text: fs.readFileSync(file, 'utf8'), actual: file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImportInputError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file (is this a Postfix configuration directory?)' : code ?? (e as Error).message}`);
  }
}

/** Postfix's defaults for what the import reads; mydomain follows the final myhostname. */
function buildMain(params: Map<string, Param>, host: HostFacts): MainCf {
  const compat = Number(params.get('compatibility_level')?.value ?? '0');
  const base = {
    myhostname: host.hostname, config_directory: POSTFIX_DIR, myorigin: '$myhostname',
    mydestination: '$myhostname, localhost.$mydomain, localhost', inet_interfaces: 'all', inet_protocols: 'all',
    alias_maps: 'hash:/etc/aliases', mynetworks_style: compat >= 2 ? 'host' : 'subnet',
  };
  const hn = new MainCf(params, base).get('myhostname') ?? host.hostname;
  const mydomain = hn.includes('.') ? hn.slice(hn.indexOf('.') + 1) : 'localdomain';
  const main = new MainCf(params, { ...base, mydomain });
  main.used.add('compatibility_level');
  return main;
}

/** myhostname -> hostname; an empty myhostname (Postfix refuses it) is dropped with a report line. */
function hostname(params: Map<string, Param>, ctx: Ctx): void {
  const p = params.get('myhostname');
  if (p && p.value === '') {
    ctx.report.skip('myhostname = (empty)', `Postfix refuses to start with it ("bad string length 0 < 1: myhostname"); the system's host name is used (here: ${ctx.host.hostname})`);
    params.delete('myhostname');
  }
}

function hostnameOf(main: MainCf, ctx: Ctx): ImportedConfig['hostname'] {
  main.used.add('mydomain');
  if (main.isSet('mydomain')) ctx.report.carry(main.shown('mydomain'), 'used where main.cf says $mydomain');
  if (!main.isSet('myhostname')) {
    ctx.report.note(`myhostname is not set (or empty): smarthost uses the system's host name at run time; where main.cf said $myhostname the import used this machine's name, ${ctx.host.hostname}: check [local] domains if the relay runs elsewhere`);
    main.used.add('myhostname');
    return undefined;
  }
  const value = main.get('myhostname')!;
  ctx.report.carry(main.shown('myhostname'), `hostname = "${value}"`);
  return { value, from: `main.cf ${main.shown('myhostname')}` };
}

/** myorigin's domain; Debian writes `myorigin = /etc/mailname`, a file holding the name. */
function originDomain(main: MainCf, ctx: Ctx): string | undefined {
  const o = main.get('myorigin') ?? '';
  if (!o.startsWith('/')) return o.toLowerCase();
  return ctx.files.read(o)?.text.split(/\r?\n/).map((l) => l.trim().toLowerCase()).find(Boolean);
}

/**
 * myorigin: smarthost qualifies bare names with hostname; an "@hostname" = "@myorigin" entry in
 * [rewrite] senders then gives them myorigin's domain on the way out, keeping the user part
 * (Postfix generic "@domain @domain2"). smtp_generic_maps entries for the same key win, as
 * Postfix applied them after myorigin.
 */
function origin(main: MainCf, generic: Readonly<Record<string, string>>, ctx: Ctx): Record<string, string> | undefined {
  const o = originDomain(main, ctx);
  const hn = (main.get('myhostname') ?? ctx.host.hostname).toLowerCase();
  if (o === hn) { ctx.report.carry(main.shown('myorigin'), 'bare sender names get @hostname (smarthost\'s rule)'); return undefined; }
  if (!o) { ctx.report.skip(main.shown('myorigin'), `its file was not found or is empty: smarthost gives bare names @${hn}`); return undefined; }
  if (generic[`@${hn}`] !== undefined) { ctx.report.carry(main.shown('myorigin'), `smtp_generic_maps @${hn} decides (Postfix applied it after myorigin)`); return undefined; }
  ctx.report.carry(main.shown('myorigin'), `[rewrite] senders "@${hn}" = "@${o}": bare names (root, as cron sends) get @hostname, then leave as NAME@${o}; `
    + `addresses written in full as NAME@${hn} leave as NAME@${o} too (Postfix left those alone), and local deliveries keep @${hn}`);
  return { [`@${hn}`]: `@${o}` };
}

function local(main: MainCf, ctx: Ctx): ImportedConfig['local'] {
  const domains: string[] = [];
  for (const d of main.list('mydestination')) {
    if (/^[A-Za-z0-9.-]+$/.test(d)) domains.push(d.toLowerCase());
    else ctx.report.skip(`mydestination entry ${d}`, 'files and lookup tables are not read; list their domains in [local] domains');
  }
  const unique = [...new Set(domains)];
  ctx.report.carry(main.shown('mydestination'), `[local] domains = [${unique.map((d) => `"${d}"`).join(', ')}]`);
  let aliases: string | undefined;
  for (const r of main.list('alias_maps').map((x) => parseMapRef(x))) {
    const found = aliases === undefined && isTextSourced(r) ? ctx.files.locate(r.path) : undefined;
    if (found) { aliases = found.actual; ctx.report.carry(`alias_maps ${r.text}`, `[local] aliases = "${found.actual}" (read directly, no newaliases)`); }
    else ctx.report.skip(`alias_maps ${r.text}`, aliases !== undefined ? 'smarthost reads one aliases file' : isTextSourced(r) ? `${r.path} is not part of the set-up that was read: set [local] aliases to the aliases file` : `${r.type}: tables are not read`);
  }
  main.used.add('alias_database');
  const code = main.get('unknown_local_recipient_reject_code');
  if (code === '550') ctx.report.carry(main.shown('unknown_local_recipient_reject_code'), 'unknown local users get 550 5.1.1 (smarthost\'s reply; accounts in /etc/passwd, or [local] users)');
  else if (main.isSet('unknown_local_recipient_reject_code')) ctx.report.skip(main.shown('unknown_local_recipient_reject_code'), 'smarthost always answers 550 5.1.1 for unknown local users');
  ctx.report.note('local mail is delivered to Maildir folders (data_dir/mail/USER by default, [local] maildir); existing mbox mailboxes (/var/mail/USER) are not converted');
  return { domains: unique, ...(aliases !== undefined ? { aliases } : {}), from: `from Postfix ${main.shown('mydestination')}; ${main.shown('alias_maps')}` };
}

function rewrite(main: MainCf, ctx: Ctx): ImportedConfig['rewrite'] {
  const entries = readTable(main, 'smtp_generic_maps', ctx);
  if (!entries) return undefined;
  const senders: Record<string, string> = {};
  for (const e of entries) {
    // a whole address, or "@domain" = "@domain2" (keep the user part), as smarthost's [rewrite] takes them
    const ok = e.key.includes('@') && (/^[^@\s]+@[^@\s]+$/.test(e.value) || (e.key.startsWith('@') && /^@[^@\s]+$/.test(e.value)));
    if (ok) { senders[e.key] = e.value; ctx.report.carry(`smtp_generic_maps ${e.key} ${e.value}`, `[rewrite] senders "${e.key}" = "${e.value}"`); }
    else ctx.report.skip(`smtp_generic_maps ${e.key} ${e.value}`, 'smarthost maps an address to a whole address, or "@domain" to "@domain2" keeping the user part: list the users one by one');
  }
  return { senders, from: `from Postfix ${main.shown('smtp_generic_maps')} (senders only: smarthost never rewrites recipients)` };
}

function masterServices(files: SetupFiles, ctx: Ctx): MasterService[] {
  const file = files.read('master.cf');
  if (!file) {
    ctx.report.note('no master.cf: assumed Postfix\'s default "smtp inet n - y - - smtpd" service on port 25');
    return [{ service: 'smtp', type: 'inet', command: 'smtpd', overrides: new Map(), args: [], line: 0 }];
  }
  const { services, problems } = parseMasterCf(file.text);
  for (const p of problems) ctx.report.skip(`master.cf ${p}`, 'not a service line');
  for (const s of services.filter((x) => x.type === 'inet' && x.command !== 'smtpd' && x.command !== 'postscreen')) {
    ctx.report.skip(`master.cf ${s.service} inet ${s.command}`, 'only smtpd services become listeners');
  }
  return services;
}

export function importPostfix(dir: string, opts: ImportOptions): { config: ImportedConfig; report: ImportReport } {
  const files = new SetupFiles(dir, POSTFIX_DIR);
  const report = new ImportReport();
  const ctx: Ctx = { files, report, host: opts.host };
  const { params, problems } = parseMainCf(readRequired(files, 'main.cf').text);
  for (const p of problems) report.skip(`main.cf ${p}`, 'Postfix would reject this line too');
  hostname(params, ctx);
  const main = buildMain(params, opts.host);
  const host = hostnameOf(main, ctx);
  const listen = listeners(masterServices(files, ctx), main, ctx);
  const tls = serverTls(main, ctx, listen.some((l) => l.tls !== 'none'));
  if (listen.some((l) => l.auth !== 'none')) cyrusUsers(main, ctx);
  const tables = readTables(main, ctx);
  const relayUp = relay(main, tables, ctx);
  const routeList = routes(main, tables, ctx);
  const routeHints = unusedTlsEntries(tables, relayUp !== undefined, ctx);
  const localCfg = local(main, ctx);
  const rw = rewrite(main, ctx);
  const fromOrigin = origin(main, rw?.senders ?? {}, ctx);
  const senders = { ...fromOrigin, ...rw?.senders };
  const rewriteAll = Object.keys(senders).length
    ? { senders, from: [rw?.from, fromOrigin ? `from Postfix ${main.shown('myorigin')}` : undefined].filter(Boolean).join('; ') } : undefined;
  const global = globalLevel(main);
  const mxTls = !relayUp && global.explicit ? { tls: global.tls, from: `from Postfix ${global.from} (direct MX delivery)` } : undefined;
  if (mxTls) report.carry(global.from, `[mx] tls = "${global.tls}"`);
  else if (!relayUp) report.carry('smtp_tls_security_level (unset; Postfix: no TLS)', '[mx] tls stays "may" (smarthost\'s default: STARTTLS when offered)');
  const size = messageSize(ctx, `main.cf ${main.shown('message_size_limit')}`, main.isSet('message_size_limit') ? main.get('message_size_limit') : undefined);
  skipLeftovers(main, ctx);
  const config: ImportedConfig = {
    ...(host ? { hostname: host } : {}), dataDir: opts.dataDir, listen, ...(tls ? { serverTls: tls } : {}),
    ...(relayUp ? { relay: relayUp } : {}), routes: routeList, routeHints, local: localCfg,
    ...(rewriteAll ? { rewrite: rewriteAll } : {}), ...(mxTls ? { mxTls } : {}), ...(size ? { messageSize: size } : {}),
  };
  return { config, report };
}
