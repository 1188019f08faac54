// `smarthost auth unblock ADDRESS…|all`: lift the failed-AUTH block (limits.auth_failures) of
// client addresses in the running daemon, through the control socket as `queue flush` does.
// The counts live in the daemon's memory only: with the daemon stopped there is nothing to lift.
import net from 'node:net';
import { sendControl } from '../control/client.js';
import { configOrReport, EXIT, UsageError } from './common.js';

export const help = `usage: smarthost auth unblock ADDRESS... | all [-c FILE]
Forgets the failed AUTH attempts of these client addresses (all: of every
address) in the running daemon, so a client blocked by [limits] auth_failures
(421 4.7.0 ... try again in N minutes) may log in again at once.
To never block some clients, list their networks in [limits] auth_failures_exempt.`;

export async function run(opts: { config?: string }, args: string[]): Promise<number> {
  const [action, ...addresses] = args;
  if (action !== 'unblock' || !addresses.length) throw new UsageError(help);
  const all = addresses.length === 1 && addresses[0]!.toLowerCase() === 'all';
  const bad = all ? [] : addresses.filter((a) => !net.isIP(a));
  if (bad.length) throw new UsageError(`${bad.map((a) => `"${a}"`).join(', ')} ${bad.length === 1 ? 'is not an IP address' : 'are not IP addresses'}; write e.g. 192.0.2.7 or 2001:db8::7, or all`);
  const config = configOrReport(opts.config);
  if (!config) return EXIT.CONFIG;
  const reply = await sendControl(config.dataDir, { op: 'unblock', ids: all ? 'ALL' : addresses });
  if (!reply) {
    process.stderr.write(`smarthost: nothing unblocked: smarthost is not running on data_dir ${config.dataDir} (failed AUTH attempts are counted in the running daemon's memory only; give -c the running daemon's configuration)\n`);
    return EXIT.TEMPFAIL;
  }
  if (!reply.ok) { process.stderr.write(`smarthost: the daemon refused: ${reply.error}\n`); return EXIT.SOFTWARE; }
  for (const a of reply.missing) process.stdout.write(`smarthost: ${a} had no failed AUTH attempts to forget\n`);
  if (reply.done.length) process.stdout.write(`smarthost: unblocked ${reply.done.join(', ')}\n`);
  else if (all) process.stdout.write('smarthost: no address had failed AUTH attempts\n');
  return EXIT.OK;
}
