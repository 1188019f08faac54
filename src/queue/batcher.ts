// Batching: callers that each want the same kind of work done share one run of it, instead of
// one run each. While a run is under way, new callers wait; the next run takes all of them at
// once. A caller is served only by a run that *started after* its call, so what it wrote before
// calling is covered (group commit). Used for directory fsyncs (dir-sync.ts), the quota file,
// the webhook outbox, and the PostgreSQL store's inserts, deletes and body reads: one
// transaction or statement for many messages, one WAL flush or round trip for all.
export class Batcher<I, O = void> {
  private waiting: Array<{ input: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running = false;
  /** How many runs there were, and for how many callers: batching's effect, for the bench. */
  readonly stats = { runs: 0, callers: 0 };

  /**
   * `work` does the work for every input and returns one result per input, in order; an Error
   * in place of a result fails only that caller, a rejection fails all. `idle` is told when no
   * run is under way or due.
   */
  constructor(
    private readonly work: (inputs: I[]) => Promise<Array<O | Error>>,
    private readonly idle: () => void = () => undefined,
    /** Inputs per run at most; the rest wait for the next. */
    private readonly max = Infinity,
  ) {}

  get busy(): boolean { return this.running; }

  /** Resolves with this input's result, once a run that started after this call has finished. */
  request(input: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    const batch = this.waiting.length <= this.max ? this.waiting : this.waiting.splice(0, this.max);
    if (batch === this.waiting) this.waiting = [];
    this.stats.runs++;
    this.stats.callers += batch.length;
    this.work(batch.map((w) => w.input)).then(
      (outs) => batch.forEach((w, i) => { const o = outs[i]; if (o instanceof Error) w.reject(o); else w.resolve(o as O); }),
      (e) => batch.forEach((w) => w.reject(e)),
    ).finally(() => {
      this.running = false;
      this.kick();
      if (!this.running) this.idle();
    });
  }
}

/** Group commit: `work` makes everything written so far durable, once for every caller waiting. */
export function groupCommit(work: () => Promise<void>, idle?: () => void): Batcher<void> {
  return new Batcher<void>(async (callers) => { await work(); return callers.map(() => undefined); }, idle);
}
