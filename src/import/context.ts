// What every mapping step shares: the machine's facts (asked once, so tests
// can fix them), the set-up's files, the report, and the error for input that
// cannot be read at all.
import os from 'node:os';
import type { ImportReport } from './import-report.js';
import type { SetupFiles } from './setup-files.js';

export interface HostFacts {
  /** The system's host name, used where the old set-up relied on it (myhostname unset). */
  readonly hostname: string;
  /** This machine's non-loopback networks ("192.0.2.0/24"), shown as a hint only. */
  readonly networks: readonly string[];
}

export function systemFacts(): HostFacts {
  const networks = Object.values(os.networkInterfaces()).flat()
    .filter((i) => i !== undefined && !i.internal).map((i) => i!.cidr)
    .filter((c): c is string => !!c && !/^fe80:/i.test(c)); // link-local: no client relays from there
  return { hostname: os.hostname(), networks };
}

/** The input cannot be read (no main.cf, no .mc): the CLI prints the message and exits non-zero. */
export class ImportInputError extends Error {}

export interface ImportOptions {
  readonly dataDir: string;
  readonly host: HostFacts;
}

export interface Ctx {
  readonly files: SetupFiles;
  readonly report: ImportReport;
  readonly host: HostFacts;
}

/**
 * The path to write for a file the set-up names but the import does not read
 * (a certificate, a CA file): where it lies now if found, else the path as
 * written, with a note that it must exist before smarthost starts.
 */
export function filePath(ctx: Ctx, original: string, what: string): string {
  const found = ctx.files.locate(original);
  if (found) {
    if (found.actual !== original) ctx.report.note(`${what} ${original} was found at ${found.actual}; the new file names that path`);
    return found.actual;
  }
  ctx.report.note(`${what} ${original} is not part of the set-up that was read: copy it to this path (or change the path) before \`smarthost start\``);
  return original;
}

/**
 * A message size limit in bytes -> ImportedConfig.messageSize; 0 ("no limit" in Postfix and
 * Sendmail) has no counterpart, since smarthost always has one.
 */
export function messageSize(ctx: Ctx, shown: string, value: string | undefined): { bytes: number; from: string } | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) === 0) {
    ctx.report.skip(shown, value === '0' ? '"no limit" has no counterpart: smarthost keeps its default (25MB); set [limits] message_size' : 'not a number of bytes');
    return undefined;
  }
  ctx.report.carry(shown, `[limits] message_size = ${value} (bytes)`);
  return { bytes: Number(value), from: `from ${shown}` };
}

export const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host.replace(/^\[|\]$/g, ''));
