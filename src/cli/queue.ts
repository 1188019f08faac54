// `smarthost queue` and `mailq`: the spool as Postfix's mailq shows it, or as
// JSON. Reads the spool files directly, so it works with the daemon stopped.
import { FsSpool } from '../queue/fs-spool.js';
import type { QueueEntry } from '../queue/spool.js';
import { sendControl } from '../control/client.js';
import type { ControlOp } from '../control/protocol.js';
import { configOrReport, EXIT, UsageError } from './common.js';

export const help = `usage: smarthost queue [list] [--json]
       smarthost queue show ID
       smarthost queue delete ID... | ALL
       smarthost queue hold ID...  |  smarthost queue release ID...
       smarthost queue flush [ID...]
       mailq
flush, hold, release and delete act through the running daemon; with the
daemon stopped, hold, release and delete change the queue files directly.`;

export function toJson(e: QueueEntry) {
  return {
    id: e.envelope.id, from: e.envelope.sender, size: e.envelope.size, arrived: e.envelope.arrived, held: e.state.held,
    recipients: e.state.recipients.map((r) => ({
      address: r.address, state: r.state, attempts: r.attempts, next_attempt: r.nextAttempt ?? null, last_reply: r.lastReply ?? null,
    })),
  };
}

/** Postfix mailq layout: "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------". */
export function formatMailq(entries: readonly QueueEntry[]): string {
  if (!entries.length) return 'Mail queue is empty\n';
  const lines = ['-Queue ID-         --Size-- ----Arrival Time---- -Sender/Recipient-------'];
  let bytes = 0;
  for (const e of entries) {
    const when = new Date(e.envelope.arrived).toString().slice(0, 24).replace(/ \d{4} /, ' '); // "Sun Nov 22 10:00:01"
    const mark = e.state.held ? '!' : ' ';
    lines.push(`${(e.envelope.id + mark).padEnd(18)} ${String(e.envelope.size).padStart(8)} ${when.padEnd(20)} ${e.envelope.sender || 'MAILER-DAEMON'}`);
    let shown: string | undefined;
    for (const r of e.state.recipients) {
      if (r.state === 'sent' || r.state === 'bounced') continue;
      // like Postfix: the reason once, then every recipient it applies to
      if (r.lastReply && r.lastReply !== shown) lines.push(`${' '.repeat(49)}(${r.lastReply})`);
      shown = r.lastReply;
      lines.push(`${' '.repeat(49)}${r.address}`);
    }
    lines.push('');
    bytes += e.envelope.size;
  }
  lines.push(`-- ${Math.ceil(bytes / 1024)} Kbytes in ${entries.length} Request${entries.length === 1 ? '' : 's'}.`);
  return lines.join('\n') + '\n';
}

function formatShow(e: QueueEntry): string {
  const env = e.envelope;
  const lines = [
    `id:       ${env.id}${e.state.held ? ' (held)' : ''}`,
    `from:     <${env.sender}>`,
    `size:     ${env.size}`,
    `arrived:  ${env.arrived}`,
    `client:   ${env.client.hostname}[${env.client.address}] helo=${env.client.helo} proto=${env.client.protocol}` +
      `${env.client.tls ? ` tls=${env.client.tls.version}` : ''}${env.client.authUser ? ` sasl_username=${env.client.authUser}` : ''}`,
    ...(env.ret || env.envid ? [`dsn:      ${env.ret ? `RET=${env.ret} ` : ''}${env.envid ? `ENVID=${env.envid}` : ''}`] : []),
    'recipients:',
    ...e.state.recipients.map((r) => `  <${r.address}> ${r.state}, attempts=${r.attempts}` +
      `${r.nextAttempt ? `, next try ${r.nextAttempt}` : ''}${r.lastReply ? `\n      last reply: ${r.lastReply}` : ''}`),
  ];
  return lines.join('\n') + '\n';
}

export async function run(opts: { config?: string; json?: boolean }, args: string[]): Promise<number> {
  const [action = 'list', ...ids] = args;
  const config = configOrReport(opts.config);
  if (!config) return EXIT.CONFIG;
  const spool = new FsSpool(config.dataDir);
  try {
    switch (action) {
      case 'list': {
        const entries = await spool.list();
        process.stdout.write(opts.json ? JSON.stringify(entries.map(toJson)) + '\n' : formatMailq(entries));
        return EXIT.OK;
      }
      case 'show': {
        if (ids.length !== 1) throw new UsageError('usage: smarthost queue show ID');
        const e = await spool.get(ids[0]!);
        if (!e) { process.stderr.write(`smarthost: no message ${ids[0]} in the queue\n`); return EXIT.NOUSER; }
        process.stdout.write(opts.json ? JSON.stringify(toJson(e)) + '\n' : formatShow(e));
        return EXIT.OK;
      }
      case 'delete': case 'hold': case 'release': case 'flush': {
        if (!ids.length && action !== 'flush') throw new UsageError(`usage: smarthost queue ${action} ID... ${action === 'delete' ? '| ALL' : ''}`);
        const all = !ids.length || (ids.length === 1 && ids[0] === 'ALL');
        const reply = await sendControl(config.dataDir, { op: action as ControlOp, ids: all ? 'ALL' : ids });
        if (reply && !reply.ok) { process.stderr.write(`smarthost: the daemon refused: ${reply.error}\n`); return EXIT.SOFTWARE; }
        if (reply) return report(action, reply.done.length, reply.missing);
        if (action === 'flush') {
          process.stderr.write('smarthost: cannot flush the mail queue: smarthost is not running (start it with `smarthost start`; it tries the whole queue when it starts)\n');
          return EXIT.TEMPFAIL;
        }
        return offline(spool, action, all ? 'ALL' : ids);
      }
      default:
        throw new UsageError(help);
    }
  } finally {
    spool.close();
  }
}

function report(action: string, done: number, missing: readonly string[]): number {
  for (const id of missing) process.stderr.write(`smarthost: no message ${id} in the queue\n`);
  const verb = action === 'delete' ? 'deleted' : action === 'hold' ? 'held' : action === 'release' ? 'released' : 'flushed';
  process.stdout.write(`smarthost: ${verb} ${done} message${done === 1 ? '' : 's'}\n`);
  return missing.length ? EXIT.NOUSER : EXIT.OK;
}

/** The daemon is down: act on the spool files directly (nobody else is using them). */
async function offline(spool: FsSpool, action: 'delete' | 'hold' | 'release', ids: readonly string[] | 'ALL'): Promise<number> {
  const targets = ids === 'ALL' ? (await spool.list()).map((e) => e.envelope.id) : ids;
  const missing: string[] = [];
  for (const id of targets) {
    const e = await spool.get(id);
    if (!e) { missing.push(id); continue; }
    if (action === 'delete') await spool.remove(id);
    else await spool.saveState(id, { ...e.state, held: action === 'hold' });
  }
  return report(action, targets.length - missing.length, missing);
}
