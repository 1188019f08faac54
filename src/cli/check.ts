// `smarthost check`: validate the config and the environment it needs, print
// every problem with its fix, exit 1 on errors. Works with the daemon stopped.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { formatDuration } from '../config/units.js';
import type { Config } from '../config/types.js';
import { configOrReport, EXIT } from './common.js';

export const help = `usage: smarthost check [-c FILE]
Validates smarthost.toml (syntax, unknown keys, values) and the environment:
certificate and key, secret file permissions, data directory. Exit 1 on errors.`;

interface Finding { level: 'error' | 'warning'; message: string; fix: string }

function checkFileReadable(file: string, what: string, out: Finding[]): boolean {
  try { fs.accessSync(file, fs.constants.R_OK); return true; } catch (e) {
    out.push({ level: 'error', message: `${what} ${file} cannot be read (${(e as NodeJS.ErrnoException).code})`, fix: 'check the path and its permissions' });
    return false;
  }
}

export function environmentFindings(config: Config): Finding[] {
  const out: Finding[] = [];
  const { certificate, key } = config.tls;
  if (certificate && key && checkFileReadable(certificate, 'certificate', out) && checkFileReadable(key, 'key', out)) {
    try {
      const x = new crypto.X509Certificate(fs.readFileSync(certificate));
      const pk = crypto.createPrivateKey(fs.readFileSync(key));
      if (!x.checkPrivateKey(pk)) out.push({ level: 'error', message: `${key} is not the key of ${certificate}`, fix: 'point [tls] key at the private key that belongs to the certificate' });
      const days = (new Date(x.validTo).getTime() - Date.now()) / 86_400_000;
      if (days < 0) out.push({ level: 'error', message: `certificate ${certificate} expired on ${x.validTo}`, fix: 'renew it (e.g. certbot renew) and restart smarthost' });
      else if (days < 14) out.push({ level: 'warning', message: `certificate ${certificate} expires in ${Math.floor(days)} days`, fix: 'renew it soon' });
    } catch (e) {
      out.push({ level: 'error', message: `cannot parse ${certificate} / ${key}: ${(e as Error).message}`, fix: 'both must be PEM files' });
    }
  }
  for (const up of [...(config.relay ? [config.relay] : []), ...config.routes]) {
    if (up.passwordFile && checkFileReadable(up.passwordFile, 'password file', out)) {
      const mode = fs.statSync(up.passwordFile).mode & 0o077;
      if (mode) out.push({ level: 'warning', message: `password file ${up.passwordFile} is readable by other users`, fix: `chmod 600 ${up.passwordFile}` });
    }
    if (up.passwordEnv && process.env[up.passwordEnv] === undefined) {
      out.push({ level: 'warning', message: `environment variable ${up.passwordEnv} (password for ${up.url}) is not set here`, fix: `make sure it is set where smarthost runs` });
    }
  }
  try {
    // check without creating anything: the data_dir, or the folder start would create it in
    let dir = config.dataDir;
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    const probe = path.join(dir, `.smarthost-check-${process.pid}`);
    fs.writeFileSync(probe, 'x');
    fs.unlinkSync(probe);
  } catch (e) {
    out.push({ level: 'error', message: `data_dir ${config.dataDir} is not writable (${(e as NodeJS.ErrnoException).code})`, fix: 'create it and give it to the user smarthost runs as' });
  }
  const authListeners = config.listen.filter((l) => l.auth !== 'none');
  if (authListeners.length && !fs.existsSync(config.auth.usersFile)) {
    out.push({ level: 'warning', message: `listeners with AUTH but no users file ${config.auth.usersFile}`, fix: 'add a user with `smarthost user add NAME`' });
  }
  return out;
}

export async function run(opts: { config?: string }): Promise<number> {
  const config = configOrReport(opts.config);
  if (!config) return EXIT.ERROR;
  const findings = environmentFindings(config);
  for (const f of findings) process.stderr.write(`${f.level}: ${f.message}\n    fix: ${f.fix}\n`);
  const errors = findings.filter((f) => f.level === 'error').length;
  process.stdout.write([
    `configuration ${config.source}: ${errors ? `${errors} error(s)` : 'OK'}`,
    `  hostname ${config.hostname}, data_dir ${config.dataDir}`,
    ...config.listen.map((l) => `  listen ${l.address} tls=${l.tls} auth=${l.auth} trusted=${l.trustedNetworks.map((n) => n.text).join(',') || 'none'}`),
    `  relay ${config.relay ? `${config.relay.url} tls=${config.relay.tls}${config.relay.username ? ` user=${config.relay.username}` : ''}` : 'none (direct MX delivery)'}`,
    ...config.routes.map((r) => `  route ${r.name}: ${[...r.domains, ...r.senders].join(', ')} -> ${r.url}`),
    `  local domains ${config.local.domains.join(', ')} -> ${config.local.maildir}`,
    `  limits message_size=${config.limits.messageSize} recipients=${config.limits.recipients} connections=${config.limits.connections}/${config.limits.connectionsPerIp} per ip, idle_timeout=${formatDuration(config.limits.idleTimeoutMs)}`,
    '',
  ].join('\n'));
  return errors ? EXIT.ERROR : EXIT.OK;
}
