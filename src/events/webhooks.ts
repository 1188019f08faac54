// Delivery webhooks ([[webhook]]): each event is appended to an outbox file and
// fdatasynced before the queue manager records the attempt, so an event is never
// lost to a restart or a kill -9 (it may be posted twice: receivers dedupe on
// event + id + to + at). One sender per webhook posts the outbox in order, signs
// each body (X-Smarthost-Signature: t=UNIX,v1=HMAC-SHA256(secret, t + "." + body),
// Stripe's scheme) and retries with backoff for 24 h before giving an event up.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { WebhookConfig } from '../config/types.js';
import { groupCommit } from '../queue/batcher.js';

export type EventName = 'delivered' | 'deferred' | 'bounced' | 'delayed' | 'suppressed';

export interface DeliveryEvent {
  readonly event: EventName;
  readonly id: string;
  readonly message_id: string | null;
  readonly from: string;
  readonly to: string;
  readonly dsn: string | null;
  readonly status: 'sent' | 'deferred' | 'bounced' | 'suppressed' | 'delayed';
  readonly reply: string | null;
  readonly relay: string | null;
  readonly attempt: number | null;
  readonly at: string;
}

interface Stored { readonly seq: number; readonly hook: number; readonly body: DeliveryEvent }

const GIVE_UP_MS = 24 * 3_600_000;
const backoff = (tries: number) => Math.min(30 * 60_000, 1000 * 2 ** Math.min(tries, 11));

export function signature(secret: string, body: string, t: number): string {
  return `t=${t},v1=${crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export interface WebhookStats { posted: number; failed: number; dropped: number }

/**
 * data_dir/webhooks/outbox.jsonl holds events not yet posted by every webhook; state.json the
 * last sequence number each webhook posted. When every webhook has caught up, the outbox is
 * emptied.
 */
export class WebhookOutbox {
  private readonly dir: string;
  private readonly outbox: string;
  private readonly stateFile: string;
  private fd: number;
  private seq = 0;
  private readonly pending: Stored[][];
  private readonly acked: number[];
  private readonly wake: Array<() => void> = [];
  private readonly commit = groupCommit(() => new Promise<void>((done, fail) => fs.fdatasync(this.fd, (e) => (e ? fail(e) : done()))));
  private closed = false;
  readonly stats: WebhookStats = { posted: 0, failed: 0, dropped: 0 };

  private readonly secrets: string[];

  constructor(dataDir: string, private readonly hooks: readonly WebhookConfig[], private readonly warn: (m: string) => void,
    private readonly observe: (result: 'posted' | 'failed' | 'dropped') => void = () => undefined, private readonly fetchFn: typeof fetch = fetch) {
    // read once per configuration: a changed secret applies at the next reload
    this.secrets = hooks.map((h) => {
      try { return fs.readFileSync(h.secretFile, 'utf8').trim(); } catch (e) {
        throw new Error(`[[webhook]] ${h.url}: cannot read secret_file ${h.secretFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create it with a long random string, mode 0600`);
      }
    });
    this.dir = path.join(dataDir, 'webhooks');
    this.outbox = path.join(this.dir, 'outbox.jsonl');
    this.stateFile = path.join(this.dir, 'state.json');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const state = this.readState();
    this.acked = hooks.map((h) => state[h.url] ?? 0);
    // sequence numbers only grow, also after the outbox was emptied
    this.seq = Math.max(0, ...Object.values(state));
    this.pending = hooks.map(() => []);
    for (const s of this.readOutbox()) {
      this.seq = Math.max(this.seq, s.seq);
      if (s.hook < hooks.length && s.seq > this.acked[s.hook]!) this.pending[s.hook]!.push(s);
    }
    this.fd = fs.openSync(this.outbox, 'a', 0o600);
    hooks.forEach((_, i) => void this.run(i));
  }

  private readState(): Record<string, number> {
    try { return JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as Record<string, number>; } catch { return {}; }
  }

  private readOutbox(): Stored[] {
    let text = '';
    try { text = fs.readFileSync(this.outbox, 'utf8'); } catch { return []; }
    const out: Stored[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try { out.push(JSON.parse(line) as Stored); } catch { /* a torn last line: its attempt was not recorded either */ }
    }
    return out;
  }

  /** Appends the events for every webhook that wants them; resolves once they are on disk. */
  async add(events: readonly DeliveryEvent[]): Promise<void> {
    const lines: string[] = [];
    for (const e of events) {
      this.hooks.forEach((h, i) => {
        if (!h.events.includes(e.event)) return;
        const s: Stored = { seq: ++this.seq, hook: i, body: e };
        lines.push(JSON.stringify(s) + '\n');
        this.pending[i]!.push(s);
      });
    }
    if (!lines.length) return;
    fs.writeSync(this.fd, lines.join(''));
    await this.commit.request();
    this.wake.splice(0).forEach((w) => w());
  }

  private async run(i: number): Promise<void> {
    const hook = this.hooks[i]!;
    let tries = 0;
    let firstFailure = 0;
    while (!this.closed) {
      const next = this.pending[i]![0];
      if (!next) { await new Promise<void>((r) => this.wake.push(r)); continue; }
      const ok = await this.post(hook, this.secrets[i]!, next.body);
      if (ok === true || Date.now() - (firstFailure || Date.now()) > GIVE_UP_MS) {
        this.observe(ok === true ? 'posted' : 'dropped');
        if (ok !== true) { this.stats.dropped++; this.warn(`webhook ${hook.url}: gave up on ${next.body.event} event for ${next.body.id} to <${next.body.to}> after 24 h of failures (last: ${ok})`); }
        else this.stats.posted++;
        this.pending[i]!.shift();
        this.acked[i] = next.seq;
        tries = 0;
        firstFailure = 0;
        await this.saveState();
        continue;
      }
      this.stats.failed++;
      this.observe('failed');
      if (tries === 0) this.warn(`webhook ${hook.url}: ${ok}; retrying with backoff (events wait in the outbox)`);
      firstFailure ||= Date.now();
      tries++;
      await new Promise<void>((r) => { const t = setTimeout(r, backoff(tries)); t.unref(); this.wake.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** true, or why it failed. */
  private async post(hook: WebhookConfig, secret: string, event: DeliveryEvent): Promise<true | string> {
    const body = JSON.stringify(event);
    const t = Math.floor(Date.now() / 1000);
    try {
      const res = await this.fetchFn(hook.url, {
        method: 'POST', body, redirect: 'error', signal: AbortSignal.timeout(hook.timeoutMs),
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'smarthost-webhook', 'X-Smarthost-Signature': signature(secret, body, t), 'X-Smarthost-Event': event.event },
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? true : `HTTP ${res.status}`;
    } catch (e) {
      return (e as Error).name === 'TimeoutError' ? `no answer within ${hook.timeoutMs / 1000} s` : `${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`;
    }
  }

  private async saveState(): Promise<void> {
    const state: Record<string, number> = this.readState();
    this.hooks.forEach((h, i) => { state[h.url] = this.acked[i]!; });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
    await fsp.rename(tmp, this.stateFile);
    // every webhook caught up: start the outbox afresh
    if (this.pending.every((p) => p.length === 0) && !this.commit.busy) {
      fs.ftruncateSync(this.fd, 0);
    }
  }

  depth(): number { return this.pending.reduce((n, p) => n + p.length, 0); }

  close(): void {
    this.closed = true;
    this.wake.splice(0).forEach((w) => w());
    fs.closeSync(this.fd);
  }
}
