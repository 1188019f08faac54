// Outbound SMTP on a second core. The queue manager stays on the main thread
// (it owns the schedule and the spool state); the SMTP client work of each
// attempt (reading the message, rewriting the sender, DKIM signing, TLS, AUTH, dot-stuffing,
// writing to the socket) runs in a worker thread, so intake and delivery no
// longer share one core. Messages cross as plain values: the destination (a
// frozen config slice), the envelope, and the results.
import { Worker } from 'node:worker_threads';
import type { PoolConfig } from 'pg';
import type { MxConfig, QueueConfig } from '../config/types.js';
import type { SenderRules } from './sender-rewrite.js';
import type { DkimSigner } from '../dkim/sign.js';
import type { OutgoingMessage, RcptResult } from '../mail/delivery.js';
import type { StsEvent } from '../mta-sts/mta-sts.js';
import type { RemoteDestination } from './transport.js';

export interface DeliveryThreadOptions {
  readonly dataDir: string;
  /** Where the worker reads message bodies from (queue/open-spool.ts). */
  readonly queue: QueueConfig;
  readonly ehloName: string;
  readonly mx: MxConfig;
  readonly deadMs: number;
  readonly rules: SenderRules;
  /** [[dkim]] keys, applied after sender rewriting. */
  readonly dkim: readonly DkimSigner[];
  /**
   * On a shared store: the database the routes' rate and concurrency are counted in for every
   * node (queue/pg-limits.ts). The worker opens its own small pool (a pg.Pool cannot cross
   * threads), so `db` holds plain values only; absent `db`: the queue store's database.
   * Absent: this process alone counts them.
   */
  readonly limits?: { readonly db?: PoolConfig; readonly node: string };
}

/** What goes to the worker: everything of an OutgoingMessage but its body, which the worker reads itself. */
export type PlainMessage = Omit<OutgoingMessage, 'body'>;

export type ToWorker =
  | { readonly op: 'deliver'; readonly n: number; readonly dest: RemoteDestination; readonly msg: PlainMessage }
  | { readonly op: 'forgetDead' }
  | { readonly op: 'close'; readonly n: number };

export type FromWorker =
  | { readonly n: number; readonly results: RcptResult[] }
  | { readonly n: number; readonly error: string }
  /** Something MTA-STS reports for the log and metrics, which live on the main thread. */
  | { readonly n: 0; readonly sts: StsEvent }
  /** A line for the log (the cluster limits' database lost or back). */
  | { readonly n: 0; readonly warning: string };

/** The SmtpTransport's interface, served by a worker thread. */
export class DeliveryThread {
  private worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: RcptResult[]) => void; reject: (e: Error) => void }>();
  private next = 1;
  private closing = false;
  private exited = false;

  constructor(
    private readonly opts: DeliveryThreadOptions,
    private readonly onSts: (e: StsEvent) => void = () => {},
    private readonly onWarning: (message: string) => void = () => {},
  ) {
    this.worker = this.spawn();
  }

  /** A worker that died (a bug, out of memory) fails the attempts under way, which defer, and is started again. */
  private spawn(): Worker {
    const worker = new Worker(new URL('./delivery-worker.js', import.meta.url), { workerData: this.opts });
    this.exited = false;
    worker.on('message', (m: FromWorker) => {
      if ('sts' in m) return this.onSts(m.sts);
      if ('warning' in m) return this.onWarning(m.warning);
      const p = this.pending.get(m.n);
      if (!p) return;
      this.pending.delete(m.n);
      if ('error' in m) p.reject(new Error(m.error)); else p.resolve(m.results);
    });
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      this.exited = true;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      if (!this.closing) setTimeout(() => { if (!this.closing) this.worker = this.spawn(); }, 1000).unref();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the delivery thread stopped (exit code ${code})`)));
    return worker;
  }

  deliver(dest: RemoteDestination, msg: OutgoingMessage): Promise<RcptResult[]> {
    if (this.exited) return Promise.reject(new Error('the delivery thread is not running'));
    const { body: _body, ...plain } = msg;
    return this.request({ op: 'deliver', n: this.next++, dest, msg: plain });
  }

  forgetDead(): void {
    if (!this.exited) this.worker.postMessage({ op: 'forgetDead' } satisfies ToWorker);
  }

  /** Closes cached connections once the deliveries under way are done, then ends the thread. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.exited) return;
    await this.request({ op: 'close', n: this.next++ }).catch(() => undefined);
    await this.worker.terminate();
  }

  private request(m: ToWorker & { n: number }): Promise<RcptResult[]> {
    return new Promise((resolve, reject) => {
      this.pending.set(m.n, { resolve, reject });
      this.worker.postMessage(m);
    });
  }
}
