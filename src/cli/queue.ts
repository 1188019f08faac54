// `smarthost queue` and `mailq`: the spool as Postfix's mailq shows it, or as
// JSON, filtered by sender, recipient, state and age; one message's status or
// its bytes (Postfix postcat -q). Reads the spool files directly, so it works
// with the daemon stopped.
import { parseDuration } from '../config/units.js';
import { splitMessage } from '../mail/header-section.js';
import { errorCode, isPermission, mapBounded } from '../queue/bounded.js';
import { openSpool } from '../queue/open-spool.js';
import type { QueueEntry, QueueListing, Spool } from '../queue/spool.js';
import { entryFilter, FilterError, toJson } from '../queue/filter.js';
import { sendControl } from '../control/control-client.js';
import type { ControlOp } from '../control/protocol.js';
import { EXIT, spoolConfigOrReport, UsageError, type Caller } from './common.js';

export const help = `usage: smarthost queue [list] [--json] [FILTERS]
       smarthost queue show ID [--headers | --body | --raw]
       smarthost queue delete ID... | ALL | FILTERS
       smarthost queue hold ID... | FILTERS  |  smarthost queue release ID... | FILTERS
       smarthost queue flush [ID... | FILTERS]
       mailq [--json] [FILTERS]
FILTERS select messages (all must match; a repeated filter matches any of its values):
  --from ADDR        the sender: an address, @DOMAIN, or any part of it; "<>" for bounces
  --to ADDR          a recipient still to be delivered: an address, @DOMAIN, or any part
  --state STATE      queued (waiting for its first or next try now), deferred, held
  --older-than DUR   arrived more than DUR ago ("30m", "2d")
show prints a message's envelope and per-recipient status; --headers, --body or
--raw print its header, its body, or the whole message as queued (postcat -q).
flush, hold, release and delete act through the running daemon; with the
daemon stopped, hold, release and delete change the queue files directly.
flush skips held messages and says so. Queue files that cannot be read are
counted on stderr with the reason, and the exit status is then 74.`;

export interface CliFilter {
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly state: readonly string[];
  readonly olderThan?: string;
}

/** The filter options checked and made into one predicate; a bad value is a UsageError. */
export function queueFilter(f: CliFilter | undefined, now = Date.now()): ((e: QueueEntry) => boolean) | undefined {
  let olderThanMs: number | undefined;
  if (f?.olderThan !== undefined) {
    const ms = parseDuration(f.olderThan);
    if (typeof ms === 'string') throw new UsageError(`--older-than: ${ms}`);
    olderThanMs = ms;
  }
  try { return entryFilter(f && { ...f, ...(olderThanMs !== undefined ? { olderThanMs } : {}) }, now); } catch (e) {
    if (e instanceof FilterError) throw new UsageError(`--${e.option} ${e.message}`);
    throw e;
  }
}

/** Postfix mailq layout: "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------". */
const MAILQ_HEADER = '-Queue ID-         --Size-- ----Arrival Time---- -Sender/Recipient-------\n';

/** One message in mailq's layout, with the empty line after it. */
function mailqEntry(e: QueueEntry): string {
  const when = new Date(e.envelope.arrived).toString().slice(0, 24).replace(/ \d{4} /, ' '); // "Sun Nov 22 10:00:01"
  const mark = e.state.held ? '!' : ' ';
  const lines = [`${(e.envelope.id + mark).padEnd(18)} ${String(e.envelope.size).padStart(8)} ${when.padEnd(20)} ${e.envelope.sender || 'MAILER-DAEMON'}`];
  if (e.lease) lines.push(`${' '.repeat(49)}(being delivered by node ${e.lease.node}, lease until ${e.lease.until})`);
  let shown: string | undefined;
  for (const r of e.state.recipients) {
    if (r.state === 'sent' || r.state === 'bounced') continue;
    // like Postfix: the reason once, then every recipient it applies to
    if (r.lastReply && r.lastReply !== shown) lines.push(`${' '.repeat(49)}(${r.lastReply})`);
    shown = r.lastReply;
    lines.push(`${' '.repeat(49)}${r.address}`);
  }
  return lines.join('\n') + '\n\n';
}

function mailqTotal(count: number, bytes: number): string {
  return `-- ${Math.ceil(bytes / 1024)} Kbytes in ${count} Request${count === 1 ? '' : 's'}.\n`;
}

/**
 * Prints the queue (or what matches) as it is read, oldest first, as JSON or in mailq's
 * layout; returns the files that could not be read. Memory stays flat however long the queue:
 * output waits for the terminal or pipe to take it (backpressure), entries are not kept.
 */
async function printListing(spool: Spool, match: ((e: QueueEntry) => boolean) | undefined, json: boolean): Promise<Array<{ id: string; error: Error }>> {
  const out = new Output();
  const unreadable: Array<{ id: string; error: Error }> = [];
  let count = 0;
  let bytes = 0;
  for await (const s of spool.scan()) {
    if (!s.entry) { unreadable.push(s.unreadable); continue; }
    if (match && !match(s.entry)) continue;
    await out.write(json ? `${count ? ',' : '['}${JSON.stringify(toJson(s.entry))}` : `${count ? '' : MAILQ_HEADER}${mailqEntry(s.entry)}`);
    count++;
    bytes += s.entry.envelope.size;
  }
  // a filter that matches nothing, or files that cannot be read, must not read as an empty queue
  const none = match ? 'Mail queue: no message matches the filters\n' : unreadable.length ? 'Mail queue: no message could be read (see below)\n' : 'Mail queue is empty\n';
  await out.write(json ? `${count ? '' : '['}]\n` : count ? mailqTotal(count, bytes) : none);
  await out.end();
  return unreadable;
}

/** stdout in pieces of 64 KiB, each written once the one before was taken. */
class Output {
  private pending: string[] = [];
  private size = 0;
  async write(text: string): Promise<void> {
    this.pending.push(text);
    this.size += text.length;
    if (this.size >= 64 * 1024) await this.flush();
  }
  async end(): Promise<void> { await this.flush(); }
  private flush(): Promise<void> {
    const text = this.pending.join('');
    this.pending = [];
    this.size = 0;
    return new Promise((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));
  }
}

function formatShow(e: QueueEntry): string {
  const env = e.envelope;
  const lines = [
    `id:       ${env.id}${e.state.held ? ' (held)' : ''}`,
    ...(e.lease ? [`lease:    node ${e.lease.node}, until ${e.lease.until}`] : []),
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

export interface QueueArgs {
  readonly config?: string;
  readonly json?: boolean;
  readonly filter?: CliFilter;
  readonly show?: { readonly headers: boolean; readonly body: boolean; readonly raw: boolean };
  /** Who is asking, for messages: "smarthost queue" by default, "sendmail" for sendmail -bp. */
  readonly caller?: Caller;
}

export async function run(opts: QueueArgs, args: string[]): Promise<number> {
  const [action = 'list', ...ids] = args;
  const match = queueFilter(opts.filter);
  const parts = Object.entries(opts.show ?? {}).filter(([, on]) => on).map(([k]) => k);
  if (parts.length && action !== 'show') throw new UsageError(`--${parts[0]} goes with show: smarthost queue show ID --${parts[0]}`);
  if (parts.length > 1) throw new UsageError(`choose one of --headers, --body and --raw (got --${parts.join(', --')})`);
  if (match && (action === 'show' || ids.length)) throw new UsageError(`give message IDs or filters, not both${action === 'show' ? ' (show takes one ID)' : ''}`);
  const config = spoolConfigOrReport(opts.config, opts.caller ?? { prog: 'smarthost queue', option: '-c' });
  if (!config) return EXIT.CONFIG;
  let spool: Spool;
  try { spool = await openSpool(config.queue, config.dataDir, { role: 'reader' }); } catch (e) {
    process.stderr.write(`smarthost: ${(e as Error).message}\n`);
    return EXIT.TEMPFAIL;
  }
  try {
    switch (action) {
      case 'list': {
        if (ids.length) throw new UsageError(`list takes no IDs (use: smarthost queue show ${ids[0]})`);
        const unreadable = await printListing(spool, match, opts.json === true);
        return reportUnreadable({ entries: [], unreadable }, 'not listed') ? EXIT.IOERR : EXIT.OK;
      }
      case 'show': return await showOne(spool, ids, parts, opts.json === true);
      case 'delete': case 'hold': case 'release': case 'flush': return await act(spool, config.dataDir, action as 'delete' | 'hold' | 'release' | 'flush', ids, match);
      default:
        throw new UsageError(help);
    }
  } finally {
    await spool.close();
  }
}

/** `queue show ID`: one message with per-recipient status, or its header, body or bytes. */
async function showOne(spool: Spool, ids: readonly string[], parts: readonly string[], json: boolean): Promise<number> {
  if (ids.length !== 1) throw new UsageError('usage: smarthost queue show ID [--headers | --body | --raw]');
  let e;
  try { e = await spool.get(ids[0]!); } catch (err) {
    reportUnreadable({ entries: [], unreadable: [{ id: ids[0]!, error: err as Error }] }, 'not shown');
    return EXIT.IOERR;
  }
  if (!e) { process.stderr.write(`smarthost: no message ${ids[0]} in the queue\n`); return EXIT.NOUSER; }
  if (parts.length) { await printMessage(spool, e.envelope.id, parts[0] as 'headers' | 'body' | 'raw'); return EXIT.OK; }
  process.stdout.write(json ? JSON.stringify(toJson(e)) + '\n' : formatShow(e));
  return EXIT.OK;
}

/** `queue delete|hold|release|flush`: through the daemon when it runs (it owns the queue), else on the store itself. */
async function act(spool: Spool, dataDir: string, action: 'delete' | 'hold' | 'release' | 'flush', ids: readonly string[], match: ((e: QueueEntry) => boolean) | undefined): Promise<number> {
  if (!ids.length && !match && action !== 'flush') throw new UsageError(`usage: smarthost queue ${action} ID...${action === 'delete' ? ' | ALL' : ''} | FILTERS`);
  const all = !match && (!ids.length || (ids.length === 1 && ids[0] === 'ALL'));
  // files that cannot be read cannot be matched: said on stderr, exit 74 after the others are done
  const listing = match ? await spool.listAll() : undefined;
  const unreadable = listing ? reportUnreadable(listing, `not matched against the filters, left alone by ${action}`) : false;
  const chosen = listing ? listing.entries.filter(match!).map((e) => e.envelope.id) : ids;
  if (match && !chosen.length) { process.stdout.write('smarthost: no message matches\n'); return unreadable ? EXIT.IOERR : EXIT.OK; }
  const reply = await sendControl(dataDir, { op: action as ControlOp, ids: all ? 'ALL' : chosen });
  if (reply && !reply.ok) { process.stderr.write(`smarthost: the daemon refused: ${reply.error}\n`); return EXIT.SOFTWARE; }
  let code: number;
  if (reply) {
    const skipped = action === 'flush' ? await flushSkipped(spool, all ? 'ALL' : chosen, reply.done, reply.missing) : 0;
    code = report(action, reply.done.length, reply.missing, skipped);
    if (reply.recovering && all) process.stdout.write(`smarthost: the daemon is still reading the queue after its start; messages it has not read yet are ${verbed(action)} as it reads them\n`);
  } else if (action === 'flush') {
    process.stderr.write('smarthost: cannot flush the mail queue: smarthost is not running (start it with `smarthost start`; it tries the whole queue when it starts)\n');
    return EXIT.TEMPFAIL;
  } else {
    code = await offline(spool, action, all ? 'ALL' : chosen);
  }
  return code === EXIT.OK && unreadable ? EXIT.IOERR : code;
}

/** The message as queued, or its header or body (split at the first empty line). */
async function printMessage(spool: Spool, id: string, part: 'headers' | 'body' | 'raw'): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of spool.open(id)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  const { head, body } = splitMessage(bytes);
  const out = part === 'raw' ? bytes : part === 'headers' ? head : body;
  await new Promise<void>((resolve, reject) => process.stdout.write(out, (err) => err ? reject(err) : resolve()));
}

/**
 * The messages flush left alone, each with the reason on stderr; returns how many. The daemon
 * skips held messages and those with nothing left to deliver, and says only what it did.
 */
async function flushSkipped(spool: Spool, asked: readonly string[] | 'ALL', done: readonly string[], missing: readonly string[]): Promise<number> {
  const tried = new Set([...done, ...missing]);
  // (a file that cannot be read has no reason to give here)
  const entries = asked === 'ALL' ? (await spool.listAll()).entries
    : await mapBounded(asked.filter((id) => !tried.has(id)), (id) => spool.get(id).catch(() => undefined));
  let skipped = 0;
  for (const e of entries) {
    if (!e || tried.has(e.envelope.id) || (asked === 'ALL' && !e.state.held)) continue;
    const why = e.state.held ? `held (release it first: smarthost queue release ${e.envelope.id})` : 'nothing left to deliver';
    process.stderr.write(`smarthost: skipped ${e.envelope.id}: ${why}\n`);
    skipped++;
  }
  return skipped;
}

function verbed(action: string): string {
  return action === 'delete' ? 'deleted' : action === 'hold' ? 'held' : action === 'release' ? 'released' : 'flushed';
}

function report(action: string, done: number, missing: readonly string[], skipped = 0): number {
  for (const id of missing) process.stderr.write(`smarthost: skipped ${id}: not found (no message ${id} in the queue)\n`);
  const verb = verbed(action);
  const left = skipped + missing.length;
  process.stdout.write(`smarthost: ${verb} ${done} message${done === 1 ? '' : 's'}${left ? `, skipped ${left} (see above)` : ''}\n`);
  return missing.length ? EXIT.NOUSER : EXIT.OK;
}

/**
 * Says on stderr which queue files could not be read (after retries of transient errors such as
 * EMFILE), how many and why, and what happened to them (`fate`); false if there were none.
 * Only EACCES and EPERM get the advice about the account.
 */
function reportUnreadable(listing: QueueListing, fate: string): boolean {
  const { unreadable } = listing;
  if (!unreadable.length) return false;
  const byCode = new Map<string, number>();
  for (const u of unreadable) { const c = errorCode(u.error) ?? 'error'; byCode.set(c, (byCode.get(c) ?? 0) + 1); }
  const why = [...byCode].map(([c, n]) => `${n} ${c}`).join(', ');
  const n = unreadable.length;
  process.stderr.write(`smarthost: ${n} queue file${n === 1 ? '' : 's'} could not be read (${why}), ${fate}:\n`);
  const SHOWN = 20;
  for (const u of unreadable.slice(0, SHOWN)) process.stderr.write(`smarthost:   ${u.id}: ${u.error.message}\n`);
  if (n > SHOWN) process.stderr.write(`smarthost:   … and ${n - SHOWN} more\n`);
  if (unreadable.some((u) => isPermission(u.error))) {
    process.stderr.write('smarthost: permission denied: run this as root or as the user smarthost runs as, or give the files to that user (chown)\n');
  }
  return true;
}

/** The daemon is down: act on the spool files directly (nobody else is using them). */
async function offline(spool: Spool, action: 'delete' | 'hold' | 'release', ids: readonly string[] | 'ALL'): Promise<number> {
  let unreadable = false;
  let targets: readonly string[];
  if (ids === 'ALL') {
    const listing = await spool.listAll();
    unreadable = reportUnreadable(listing, `left alone by ${action} ALL`);
    targets = listing.entries.map((e) => e.envelope.id);
  } else targets = ids;
  const missing: string[] = [];
  const failed: Array<{ id: string; error: Error }> = [];
  for (const id of targets) {
    let e;
    try { e = await spool.get(id); } catch (error) { failed.push({ id, error: error as Error }); continue; }
    if (!e) { missing.push(id); continue; }
    if (action === 'delete') await spool.remove(id);
    else await spool.saveState(id, { ...e.state, held: action === 'hold' });
  }
  if (failed.length) unreadable = reportUnreadable({ entries: [], unreadable: failed }, `left alone by ${action}`) || unreadable;
  const code = report(action, targets.length - missing.length - failed.length, missing);
  return code === EXIT.OK && unreadable ? EXIT.IOERR : code;
}
