// What every verb shares: -c FILE, loading the config with all its problems
// printed, and sysexits-style exit codes.
import { ConfigError, formatProblems, loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

export const EXIT = { OK: 0, ERROR: 1, USAGE: 64, DATAERR: 65, NOINPUT: 66, NOUSER: 67, SOFTWARE: 70, CANTCREAT: 73, TEMPFAIL: 75, NOPERM: 77, CONFIG: 78 } as const;

export class UsageError extends Error {}

/** Loads the config for a verb; on problems prints them all and returns undefined. */
export function configOrReport(file: string | undefined): Config | undefined {
  try {
    return loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`smarthost: the configuration has ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}:\n${formatProblems(e.problems)}\n`);
    return undefined;
  }
}
