// Group commit for directory fsyncs. A new name in the queue directory (a
// create, a link, an unlink) is durable only once the directory itself is
// fsynced; instead of one fsync per caller, every caller waiting at the same
// moment shares the next one. A caller is released only by an fsync that
// *started after* its call, so its own change is covered.
import fs from 'node:fs';
import { groupCommit } from './batcher.js';

export class DirSync {
  private readonly commit = groupCommit(() => this.fsync(), () => { if (this.closeWhenIdle) this.close(); });
  /** close() came while an fsync ran: close once it and those waiting are done. */
  private closeWhenIdle = false;
  private fd: number | undefined;

  constructor(private readonly dir: string) {}

  /** How many fsyncs ran, and for how many callers: group commit's effect, for the bench. */
  get stats(): { syncs: number; callers: number } { return { syncs: this.commit.stats.runs, callers: this.commit.stats.callers }; }

  sync(): Promise<void> { return this.commit.request(); }

  private async fsync(): Promise<void> {
    if (this.fd === undefined) this.fd = fs.openSync(this.dir, 'r');
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /** Closes the directory; an fsync under way (and those waiting for the next) finish first. sync() reopens it. */
  close(): void {
    this.closeWhenIdle = this.commit.busy;
    if (this.commit.busy) return;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
