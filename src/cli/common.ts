// What every verb shares: -c FILE, loading the config with all its problems
// printed, and sysexits-style exit codes.
import fs from 'node:fs';
import path from 'node:path';
import type { Override } from '../config/environment.js';
import { CONFIG_VARIABLE, ConfigError, EMBEDDED_DEFAULT, formatProblems, loadConfig, searchConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

export const EXIT = { OK: 0, ERROR: 1, USAGE: 64, DATAERR: 65, NOINPUT: 66, NOUSER: 67, SOFTWARE: 70, CANTCREAT: 73, IOERR: 74, TEMPFAIL: 75, NOPERM: 77, CONFIG: 78 } as const;

export class UsageError extends Error {}

/** Loads the config for a verb; on problems prints them all and returns undefined. */
export function configOrReport(file: string | undefined, overrides: readonly Override[] = []): Config | undefined {
  try {
    return loadConfig(file, overrides);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`smarthost: the configuration has ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}:\n${formatProblems(e.problems)}\n`);
    return undefined;
  }
}

/** How a verb names itself and its config option in messages: "smarthost queue" and -c, or "sendmail" and -C. */
export interface Caller { readonly prog: string; readonly option: '-c' | '-C' }

/**
 * The config for verbs that use the daemon's spool (sendmail, mailq, queue, user). Found no file,
 * the embedded default's data_dir is ./data: if no daemon ever made a queue there, mail written
 * into it would never be delivered and a listing would show somebody else's (empty) queue. So that
 * case is refused with exit 78 and a message that says what was looked for, instead of going on
 * silently. A folder where `smarthost start` runs on the embedded default has its queue: allowed.
 */
export function spoolConfigOrReport(file: string | undefined, caller: Caller): Config | undefined {
  const config = configOrReport(file);
  if (!config || config.source !== EMBEDDED_DEFAULT || fs.existsSync(path.join(config.dataDir, 'queue'))) return config;
  const search = searchConfig(file);
  process.stderr.write([
    `${caller.prog}: no configuration file found, and ${config.dataDir} holds no queue: mail queued there would`,
    `never be delivered, and no daemon reads that queue (nothing was ${caller.prog.endsWith('sendmail') ? 'queued' : 'changed'}).`,
    `  looked for: ${caller.option} FILE (not given), $${CONFIG_VARIABLE} (not set), ${search.looked.join(', ')}`,
    `  fix: name the daemon's configuration: ${caller.prog} ${caller.option} /etc/smarthost/smarthost.toml …,`,
    `       or export ${CONFIG_VARIABLE}=/path/to/smarthost.toml (for cron: set it in the crontab),`,
    `       or run it in the folder where \`smarthost start\` runs on the embedded default`,
    '',
  ].join('\n'));
  return undefined;
}
