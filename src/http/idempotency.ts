// Idempotency-Key for POST /api/v1/messages: a retried request (the client never
// saw our 202) gets the first answer instead of a second copy of the message.
// Kept 24 h, in a file appended and fdatasynced before the 202, so a restart keeps
// them. The window left is the one SMTP has too: a crash between the message's
// commit and this record, and the retry queues it again.
import fs from 'node:fs';
import path from 'node:path';
import type { SubmitOutcome } from './messages.js';

const TTL_MS = 24 * 3_600_000;

interface Entry { readonly fp: string; readonly id: string; readonly at: number }

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<SubmitOutcome>>();
  private fd: number | undefined;

  constructor(private readonly file: string, private readonly now = Date.now) {
    this.load();
  }

  /** Reads the file, drops expired lines and writes the rest back (so it never grows past a day's keys). */
  private load(): void {
    let text = '';
    try { text = fs.readFileSync(this.file, 'utf8'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    const cutoff = this.now() - TTL_MS;
    for (const line of text.split('\n')) {
      try {
        const e = JSON.parse(line) as { k: string; fp: string; id: string; at: number };
        if (typeof e.k === 'string' && e.at > cutoff) this.entries.set(e.k, { fp: e.fp, id: e.id, at: e.at });
      } catch { /* a torn last line after a crash: its request got no 202 */ }
    }
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, [...this.entries].map(([k, e]) => JSON.stringify({ k, ...e }) + '\n').join(''), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.fd = fs.openSync(this.file, 'a', 0o600);
  }

  async run(key: string, fp: string, fn: () => Promise<SubmitOutcome>): Promise<{ outcome: SubmitOutcome; replayed: boolean } | { conflict: true }> {
    const known = this.entries.get(key);
    if (known && known.at > this.now() - TTL_MS) {
      return known.fp === fp ? { outcome: { ok: true, id: known.id }, replayed: true } : { conflict: true };
    }
    const running = this.inFlight.get(key);
    if (running) {
      const outcome = await running;
      const done = this.entries.get(key);
      if (done && done.fp !== fp) return { conflict: true };
      return { outcome, replayed: true };
    }
    const p = fn().then((outcome) => {
      // only a queued message is remembered: a refused request may be fixed and sent again
      if (outcome.ok) this.remember(key, { fp, id: outcome.id, at: this.now() });
      return outcome;
    }).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return { outcome: await p, replayed: false };
  }

  private remember(key: string, e: Entry): void {
    this.entries.set(key, e);
    if (this.fd === undefined) return;
    fs.writeSync(this.fd, JSON.stringify({ k: key, ...e }) + '\n');
    fs.fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
