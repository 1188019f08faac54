// The suppression list: recipients whose mailbox the provider said does not exist
// (5.1.1 and the like). Later mail to them bounces at once with a DSN that says
// why, without contacting the upstream again: repeated sends to dead addresses
// are what costs a sender its reputation with Microsoft, Google and the ESPs.
// One small JSON file in data_dir, replaced atomically; `smarthost suppression
// del` edits it while the daemon runs, and the daemon re-reads it when it changes.
import fs from 'node:fs';
import path from 'node:path';

export interface Suppressed {
  readonly address: string;
  /** The enhanced code and reply that put it on the list. */
  readonly dsn: string;
  readonly reply: string;
  readonly since: string;       // ISO 8601
  readonly expires: string;     // ISO 8601
  /** The message whose delivery failed. */
  readonly queueId: string;
}

export interface SuppressionSettings {
  readonly enabled: boolean;
  /** Enhanced codes that suppress, e.g. ["5.1.1", "5.1.10"]. */
  readonly codes: readonly string[];
  readonly expireMs: number;
}

const key = (address: string) => address.toLowerCase();

export function suppressionFile(dataDir: string): string { return path.join(dataDir, 'suppressions.json'); }

export function readSuppressions(file: string, now = Date.now()): Map<string, Suppressed> {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw e;
  }
  const list = JSON.parse(text) as Suppressed[];
  if (!Array.isArray(list)) throw new Error(`${file}: not a JSON list of suppressed recipients`);
  return new Map(list.filter((s) => Date.parse(s.expires) > now).map((s) => [key(s.address), s]));
}

export function writeSuppressions(file: string, entries: Iterable<Suppressed>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeFileSync(fd, JSON.stringify([...entries].sort((a, b) => a.address.localeCompare(b.address)), null, 1) + '\n');
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
}

/** The daemon's list: in memory, re-read when the file changes under it, written when it grows. */
export class SuppressionList {
  private entries = new Map<string, Suppressed>();
  private stamp = '';
  constructor(private readonly file: string, public settings: SuppressionSettings, private readonly now = Date.now,
    private readonly warn: (m: string) => void = () => undefined) {}

  private refresh(): void {
    let stamp = 'absent';
    try { const st = fs.statSync(this.file); stamp = `${st.mtimeMs}:${st.size}:${st.ino}`; } catch { /* none yet */ }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try { this.entries = readSuppressions(this.file, this.now()); } catch (e) {
      // a broken file must not bounce mail: suppress nothing until it is fixed
      this.warn(`suppression list ${this.file} cannot be read (${(e as Error).message}); no recipient is suppressed until it is fixed or removed`);
      this.entries = new Map();
    }
  }

  /** The entry that suppresses `address` now, if any. */
  find(address: string): Suppressed | undefined {
    if (!this.settings.enabled) return undefined;
    this.refresh();
    const s = this.entries.get(key(address));
    return s && Date.parse(s.expires) > this.now() ? s : undefined;
  }

  /** Whether a permanent failure with this code puts its recipient on the list. */
  suppresses(status: string): boolean { return this.settings.enabled && this.settings.codes.includes(status); }

  add(address: string, dsn: string, reply: string, queueId: string): Suppressed {
    this.refresh();
    const at = this.now();
    const s: Suppressed = { address, dsn, reply, queueId, since: new Date(at).toISOString(), expires: new Date(at + this.settings.expireMs).toISOString() };
    this.entries.set(key(address), s);
    writeSuppressions(this.file, this.entries.values());
    this.refresh();
    return s;
  }

  remove(address: string): boolean {
    this.refresh();
    if (!this.entries.delete(key(address))) return false;
    writeSuppressions(this.file, this.entries.values());
    this.refresh();
    return true;
  }

  list(): Suppressed[] {
    this.refresh();
    const now = this.now();
    return [...this.entries.values()].filter((s) => Date.parse(s.expires) > now).sort((a, b) => a.address.localeCompare(b.address));
  }
}
