// `smarthost auth unblock ADDRESS…|all` and `--user NAME`: lift the failed-AUTH blocks
// (limits.auth_failures per client address, limits.auth_failures_per_account per account) in
// the running daemon, through the control socket as `queue flush` does. The counts live in the
// daemon's memory only: with the daemon stopped there is nothing to lift.
import net from 'node:net';
import { sendControl } from '../control/control-client.js';
import type { ControlReply } from '../control/protocol.js';
import { configOrReport, EXIT, UsageError } from './common.js';

export const help = `usage: smarthost auth unblock ADDRESS... | --user NAME... | all [-c FILE]
Forgets the failed AUTH attempts of these client addresses, or of these AUTH
users (--user, repeatable), in the running daemon (all: of every address and
user). A client blocked by [limits] auth_failures (421 4.7.0 ... try again in
N minutes) may log in again at once; so may a user blocked by
auth_failures_per_account (454 4.7.0 from addresses it never logged in from).
To never block some clients, list their networks in [limits] auth_failures_exempt.`;

export async function run(opts: { config?: string; users?: readonly string[] }, args: string[]): Promise<number> {
  const [action, ...addresses] = args;
  const users = opts.users ?? [];
  if (action !== 'unblock' || (!addresses.length && !users.length)) throw new UsageError(help);
  const all = addresses.length === 1 && addresses[0]!.toLowerCase() === 'all';
  const bad = all ? [] : addresses.filter((a) => !net.isIP(a));
  if (bad.length) throw new UsageError(`${bad.map((a) => `"${a}"`).join(', ')} ${bad.length === 1 ? 'is not an IP address' : 'are not IP addresses'}; write e.g. 192.0.2.7 or 2001:db8::7, or all (an AUTH user: --user NAME)`);
  const config = configOrReport(opts.config);
  if (!config) return EXIT.CONFIG;
  const replies: ControlReply[] = [];
  for (const req of [
    ...(addresses.length ? [{ op: 'unblock' as const, ids: all ? 'ALL' as const : addresses }] : []),
    ...(users.length ? [{ op: 'unblock-user' as const, ids: users }] : []),
  ]) {
    const reply = await sendControl(config.dataDir, req);
    if (!reply) {
      process.stderr.write(`smarthost: nothing unblocked: smarthost is not running on data_dir ${config.dataDir} (failed AUTH attempts are counted in the running daemon's memory only; give -c the running daemon's configuration)\n`);
      return EXIT.TEMPFAIL;
    }
    if (!reply.ok) { process.stderr.write(`smarthost: the daemon refused: ${reply.error}\n`); return EXIT.SOFTWARE; }
    replies.push(reply);
  }
  const done = replies.flatMap((r) => (r.ok ? r.done : []));
  for (const r of replies) for (const a of r.ok ? r.missing : []) process.stdout.write(`smarthost: ${a} had no failed AUTH attempts to forget\n`);
  if (done.length) process.stdout.write(`smarthost: unblocked ${done.join(', ')}\n`);
  else if (all) process.stdout.write('smarthost: no address or user had failed AUTH attempts\n');
  return EXIT.OK;
}
