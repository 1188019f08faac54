// Route quotas in front of delivery. Before an attempt, the recipients that fit the route's
// quota are counted and the count is made durable (quota.json, fsynced); only then do they go,
// so a crash at any moment can only leave recipients counted that were never sent, never the
// reverse. Recipients that were not sent are handed back after the attempt. Those over the
// quota are deferred (never bounced), and come back when the oldest counted ones leave the window.
// The counts live in data_dir/quota.json on one node, or in the store's database for several
// (queue/pg-limits-quota.ts); either is a `QuotaCounts`.
import type { Rate } from '../config/units.js';
import { allRecipients, type OutgoingMessage, type RcptResult } from '../mail/delivery.js';
import { QuotaFile } from '../queue/quota-file.js';
import type { Destination } from '../route/choose-route.js';
import { QuotaLedger, type QuotaState, type Taken } from './quota.js';

const DAY = 86_400_000;

/** Where route quotas are counted. */
export interface QuotaCounts {
  /** Where the counts are kept, for the reason of a deferral when one cannot be recorded. */
  readonly where: string;
  /**
   * Counts up to `n` recipients against the route key's quota and resolves once the count is
   * durable (it survives a crash). Rejects when it cannot be recorded; nothing is counted then.
   */
  take(key: string, quota: Rate, n: number): Promise<Taken>;
}

/** This node's counts (quota.ts), written to data_dir/quota.json before a take resolves. */
class FileQuotaCounts implements QuotaCounts {
  constructor(private readonly ledger: QuotaLedger, private readonly file: QuotaFile, private readonly now: () => number) {}

  get where(): string { return this.file.file; }

  async take(key: string, quota: Rate, n: number): Promise<Taken> {
    const taken = this.ledger.take(key, quota, n, this.now());
    if (taken.granted === 0) return taken;
    try { await this.file.save(); } catch (e) {
      taken.giveBack(taken.granted);
      throw e;
    }
    // counts only go down: waiting for the disk would gain nothing, and the next count writes it again
    return { ...taken, giveBack: (k) => { taken.giveBack(k); if (k > 0) this.file.save().catch(() => undefined); } };
  }
}

export class QuotaGate {
  constructor(private readonly counts: QuotaCounts) {}

  /** Reads data_dir/quota.json; a file that cannot be read counts every quota as used up for one window from its last change. */
  static async open(dataDir: string, warn: (message: string) => void, now: () => number = Date.now): Promise<QuotaGate> {
    const ledger = await readLedger(dataDir, warn, now);
    return new QuotaGate(new FileQuotaCounts(ledger, new QuotaFile(dataDir, () => JSON.stringify(ledger)), now));
  }

  /** Delivers through `send` what the destination's quota allows; one result per recipient. */
  async deliver(dest: Destination, msg: OutgoingMessage, send: (msg: OutgoingMessage) => Promise<RcptResult[]>): Promise<RcptResult[]> {
    const quota = dest.kind === 'upstream' ? dest.upstream.quota : undefined;
    if (!quota || dest.kind !== 'upstream') return send(msg);
    let taken: Taken;
    try {
      taken = await this.counts.take(dest.key, quota, msg.recipients.length);
    } catch (e) {
      return allRecipients(msg.recipients.map((r) => r.address), 'deferred',
        { status: '4.3.0', reason: `cannot record the quota count in ${this.counts.where} (${(e as Error).message}), so nothing was sent` }, 'none', 0);
    }
    const going = msg.recipients.slice(0, taken.granted);
    const over = taken.freesAt === undefined ? [] : allRecipients(msg.recipients.slice(taken.granted).map((r) => r.address), 'deferred',
      { status: '4.4.5', reason: usedUp(dest.name, quota, taken.freesAt) }, 'none', 0).map((r) => ({ ...r, notBefore: taken.freesAt! }));
    if (!going.length) return over;
    let results: RcptResult[];
    try {
      results = await send({ ...msg, recipients: going });
    } catch (e) {
      taken.giveBack(going.length);
      throw e;
    }
    taken.giveBack(results.filter((r) => r.outcome !== 'sent').length);
    return [...results, ...over];
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
