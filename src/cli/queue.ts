// `smarthost queue` and `mailq`: the spool as Postfix's mailq shows it, or as
// JSON. Reads the spool files directly, so it works with the daemon stopped.
import { FsSpool } from '../queue/fs-spool.js';
import type { QueueEntry } from '../queue/spool.js';
import { MailLog } from '../maillog/maillog.js';
import { configOrReport, EXIT, UsageError } from './common.js';

export const help = `usage: smarthost queue [list] [--json]
       smarthost queue show ID
       smarthost queue delete ID... | ALL
       smarthost queue hold ID...  |  smarthost queue release ID...
       mailq`;

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
    for (const r of e.state.recipients) {
      if (r.state === 'sent' || r.state === 'bounced') continue;
      if (r.lastReply) lines.push(`${' '.repeat(49)}(${r.lastReply})`);
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
      case 'delete': case 'hold': case 'release': {
        if (!ids.length) throw new UsageError(`usage: smarthost queue ${action} ID... ${action === 'delete' ? '| ALL' : ''}`);
        const targets = action === 'delete' && ids.length === 1 && ids[0] === 'ALL' ? (await spool.list()).map((e) => e.envelope.id) : ids;
        const log = new MailLog({ format: 'postfix', hostname: config.hostname, sink: { write: () => undefined } });
        let missing = 0;
        for (const id of targets) {
          const e = await spool.get(id);
          if (!e) { process.stderr.write(`smarthost: no message ${id} in the queue\n`); missing++; continue; }
          if (action === 'delete') { await spool.remove(id); log.removed(id, 'postsuper'); }
          else await spool.saveState(id, { ...e.state, held: action === 'hold' });
        }
        const done = targets.length - missing;
        process.stdout.write(`smarthost: ${action === 'delete' ? 'deleted' : action === 'hold' ? 'held' : 'released'} ${done} message${done === 1 ? '' : 's'}\n`);
        return missing ? EXIT.NOUSER : EXIT.OK;
      }
      case 'flush':
        process.stderr.write('smarthost: queue flush needs outbound delivery, which this version does not have yet; accepted mail waits in the queue\n');
        return EXIT.TEMPFAIL;
      default:
        throw new UsageError(help);
    }
  } finally {
    spool.close();
  }
}
