// Route quotas in front of delivery. Before an attempt, the recipients that fit the route's
// quota are counted and the count is made durable (quota.json, fsynced); only then do they go,
// so a crash at any moment can only leave recipients counted that were never sent, never the
// reverse. Recipients that were not sent are handed back after the attempt. Those over the
// quota are deferred (never bounced), and come back when the oldest counted ones leave the window.
import type { Rate } from '../config/units.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import { QuotaFile } from '../queue/quota-file.js';
import type { Destination } from '../route/route.js';
import { QuotaLedger, type QuotaState } from './quota.js';

const DAY = 86_400_000;

export class QuotaGate {
  private constructor(private readonly ledger: QuotaLedger, private readonly file: QuotaFile, private readonly now: () => number) {}

  /** Reads data_dir/quota.json; a file that cannot be read counts every quota as used up for one window from its last change. */
  static async open(dataDir: string, warn: (message: string) => void, now: () => number = Date.now): Promise<QuotaGate> {
    const ledger = await readLedger(dataDir, warn, now);
    const gate: QuotaGate = new QuotaGate(ledger, new QuotaFile(dataDir, () => JSON.stringify(gate.ledger)), now);
    return gate;
  }

  /** Delivers through `send` what the destination's quota allows; one result per recipient. */
  async deliver(dest: Destination, msg: OutgoingMessage, send: (msg: OutgoingMessage) => Promise<RcptResult[]>): Promise<RcptResult[]> {
    const quota = dest.kind === 'upstream' ? dest.upstream.quota : undefined;
    if (!quota || dest.kind !== 'upstream') return send(msg);
    const taken = this.ledger.take(dest.key, quota, msg.recipients.length, this.now());
    const going = msg.recipients.slice(0, taken.granted);
    const over = taken.freesAt === undefined ? [] : allRecipients(msg.recipients.slice(taken.granted).map((r) => r.address), 'deferred',
      { status: '4.4.5', reason: usedUp(dest.name, quota, taken.freesAt) }, 'none', 0).map((r) => ({ ...r, notBefore: taken.freesAt! }));
    if (!going.length) return over;
    try {
      await this.file.save();
    } catch (e) {
      taken.giveBack(going.length);
      return [...allRecipients(going.map((r) => r.address), 'deferred',
        { status: '4.3.0', reason: `cannot record the quota count in ${this.file.file} (${(e as Error).message}), so nothing was sent` }, 'none', 0), ...over];
    }
    let results: RcptResult[];
    try {
      results = await send({ ...msg, recipients: going });
    } catch (e) {
      taken.giveBack(going.length);
      this.saveLater();
      throw e;
    }
    const unsent = results.filter((r) => r.outcome !== 'sent').length;
    taken.giveBack(unsent);
    if (unsent) this.saveLater(); // counts only went down: waiting for the disk would gain nothing
    return [...results, ...over];
  }

  private saveLater(): void {
    this.file.save().catch(() => { /* the next count writes it again */ });
  }
}

/** The counts in data_dir/quota.json (also for `smarthost check`, which only reads them). */
export async function readLedger(dataDir: string, warn: (message: string) => void, now: () => number = Date.now): Promise<QuotaLedger> {
  const read = await QuotaFile.read(dataDir);
  if (read.kind === 'read' && isQuotaState(read.data)) return new QuotaLedger(read.data);
  if (read.kind === 'missing') return new QuotaLedger();
  const since = read.kind === 'unreadable' ? read.mtimeMs : now();
  const why = read.kind === 'unreadable' ? read.reason : 'not a quota file';
  warn(`quota file ${dataDir}/quota.json cannot be read (${why}): every route quota counts as used up for one window from ${utc(since, 0)}, rather than start afresh`);
  return QuotaLedger.usedUpSince(since);
}

/** "daily quota of 10000 recipients for route m365 used up; resets 2026-12-08 00:00 UTC" */
export function usedUp(route: string, quota: Rate, freesAt: number): string {
  const what = quota.windowMs === DAY ? `daily quota of ${quota.count} recipients` : `quota of ${quota.count} recipients per ${windowWords(quota.windowMs)}`;
  return `${what} for ${route === 'relay' ? '[relay]' : `route ${route}`} used up; resets ${utc(freesAt, quota.windowMs)}`;
}

function windowWords(ms: number): string {
  for (const [unit, size] of [['d', DAY], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** The time in UTC, rounded up (never an earlier reset than the real one): to the minute for windows of an hour or more. */
export function utc(ms: number, windowMs: number): string {
  const step = windowMs >= 3_600_000 ? 60_000 : 1000;
  const iso = new Date(Math.ceil(ms / step) * step).toISOString();
  return `${iso.slice(0, 10)} ${step === 60_000 ? iso.slice(11, 16) : iso.slice(11, 19)} UTC`;
}

function isQuotaState(v: unknown): v is QuotaState {
  const s = v as QuotaState | null;
  return typeof s === 'object' && s !== null && s.version === 1 && typeof s.routes === 'object' && s.routes !== null
    && Object.values(s.routes).every((l) => Array.isArray(l) && l.every((e) => Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'number')));
}
