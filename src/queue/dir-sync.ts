// Group commit for directory fsyncs. A new name in the queue directory (a
// create, a link, an unlink) is durable only once the directory itself is
// fsynced; instead of one fsync per caller, every caller waiting at the same
// moment shares the next one. A caller is released only by an fsync that
// *started after* its call, so its own change is covered.
import fs from 'node:fs';

export class DirSync {
  private waiting: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private running = false;
  /** close() came while an fsync ran: close once it and those waiting are done. */
  private closeWhenIdle = false;
  private fd: number | undefined;
  /** How many fsyncs ran, and for how many callers: group commit's effect, for the bench. */
  readonly stats = { syncs: 0, callers: 0 };

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    const batch = this.waiting;
    this.waiting = [];
    this.stats.syncs++;
    this.stats.callers += batch.length;
    this.fsync().then(
      () => batch.forEach((w) => w.resolve()),
      (e) => batch.forEach((w) => w.reject(e)),
    ).finally(() => {
      this.running = false;
      this.kick();
      if (!this.running && this.closeWhenIdle) this.close();
    });
  }

  private async fsync(): Promise<void> {
    if (this.fd === undefined) this.fd = fs.openSync(this.dir, 'r');
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /** Closes the directory; an fsync under way (and those waiting for the next) finish first. sync() reopens it. */
  close(): void {
    this.closeWhenIdle = this.running;
    if (this.running) return;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
