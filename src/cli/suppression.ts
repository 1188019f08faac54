// `smarthost suppression list|del ADDRESS`: the recipients that bounce at once
// because the provider refused them as nonexistent. Edits data_dir's file
// directly; a running daemon sees the change at once.
import { readSuppressions, suppressionFile, writeSuppressions } from '../events/suppression-list.js';
import { EXIT, spoolConfigOrReport, UsageError } from './common.js';

export const help = `usage: smarthost suppression list [--json]
       smarthost suppression del ADDRESS...
Recipients whose mailbox the upstream said does not exist ([suppression] codes,
5.1.1 and 5.1.10 by default) are put on this list; later mail to them bounces at
once, with a DSN that says so, without contacting the upstream. Entries expire
after [suppression] expire (30 days). del takes an address off the list.`;

export async function run(opts: { config?: string; json?: boolean }, args: string[]): Promise<number> {
  const [action, ...addresses] = args;
  if (!action || !['list', 'del'].includes(action)) throw new UsageError(help);
  const config = spoolConfigOrReport(opts.config, { prog: 'smarthost suppression', option: '-c' });
  if (!config) return EXIT.CONFIG;
  const file = suppressionFile(config.dataDir);
  let entries;
  try { entries = readSuppressions(file); } catch (e) { process.stderr.write(`smarthost suppression: ${(e as Error).message}\n`); return EXIT.DATAERR; }
  if (action === 'list') {
    const list = [...entries.values()].sort((a, b) => a.address.localeCompare(b.address));
    if (opts.json) process.stdout.write(JSON.stringify(list) + '\n');
    else for (const s of list) process.stdout.write(`${s.address}\t${s.dsn}\tsince ${s.since}\tuntil ${s.expires}\t${s.reply}\n`);
    return EXIT.OK;
  }
  if (!addresses.length) throw new UsageError('smarthost suppression del needs an ADDRESS');
  const missing = addresses.filter((a) => !entries.delete(a.toLowerCase()));
  if (missing.length < addresses.length) writeSuppressions(file, entries.values());
  for (const a of addresses) if (!missing.includes(a)) process.stdout.write(`removed ${a}: mail to it is delivered again\n`);
  for (const a of missing) process.stderr.write(`smarthost suppression: ${a} is not on the list\n`);
  return missing.length ? EXIT.NOUSER : EXIT.OK;
}
