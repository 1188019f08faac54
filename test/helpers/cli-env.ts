// Runs the built CLI with a chosen folder and environment, never the caller's
// SMARTHOST_* variables, so tests of config discovery mean the same everywhere.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { CLI } from './daemon.js';

export const ETC_CONFIG = '/etc/smarthost/smarthost.toml';

/** Whether this machine has a real /etc/smarthost/smarthost.toml (then tests of the fallback cannot run). */
export const etcConfigExists = () => fs.existsSync(ETC_CONFIG);

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SMARTHOST_')));
  return { ...env, ...extra };
}

/** `script`: run another path to the CLI, e.g. a symlink named sendmail. */
export function cli(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string; script?: string }) {
  const r = spawnSync(process.execPath, [opts.script ?? CLI, ...args], {
    cwd: opts.cwd, encoding: 'utf8', env: cleanEnv(opts.env), input: opts.input ?? '', timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
