// Group commit: callers that want a write made durable share one, instead of one each. A
// caller is released only by a run that *started after* its call, so what it changed before
// calling is covered. Used for directory fsyncs (dir-sync.ts), the quota file and the webhook
// outbox.
export class GroupCommit {
  private waiting: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private running = false;
  /** How many runs there were, and for how many callers: group commit's effect, for the bench. */
  readonly stats = { runs: 0, callers: 0 };

  /** `work` makes everything written so far durable; `idle` is told when no run is under way or due. */
  constructor(private readonly work: () => Promise<void>, private readonly idle: () => void = () => undefined) {}

  get busy(): boolean { return this.running; }

  /** Resolves once a run that started after this call has finished; rejects with its error. */
  request(): Promise<void> {
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
    this.stats.runs++;
    this.stats.callers += batch.length;
    this.work().then(
      () => batch.forEach((w) => w.resolve()),
      (e) => batch.forEach((w) => w.reject(e)),
    ).finally(() => {
      this.running = false;
      this.kick();
      if (!this.running) this.idle();
    });
  }
}
