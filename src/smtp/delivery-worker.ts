// The worker side of delivery-thread.ts (its own wiring root): an SmtpTransport of its own, the
// spool opened for message bodies (queue/open-spool.ts, the same store as the daemon's), sender rewriting then DKIM signing on the way out.
// On a shared store, its own small pool to the database of the cluster-wide route limits.
import { parentPort, workerData } from 'node:worker_threads';
import type pg from 'pg';
import { rewriteOutgoing } from './sender-rewrite.js';
import { MtaSts } from '../mta-sts/mta-sts.js';
import { signOutgoing } from '../dkim/sign.js';
import { Readable } from 'node:stream';
import { openSpool } from '../queue/open-spool.js';
import type { PgLimits } from '../queue/pg-limits.js';
import type { Spool } from '../queue/spool.js';
import { resolverFor } from './mx.js';
import type { DeliveryThreadOptions, FromWorker, ToWorker } from './delivery-thread.js';
import { SmtpTransport } from './transport.js';

const opts = workerData as DeliveryThreadOptions;
// opened at the first attempt, and again after a failure (a database that is down defers that attempt)
let spool: Promise<Spool> | undefined;
const spoolNow = () => (spool ??= openSpool(opts.queue, opts.dataDir, { role: 'reader' }).catch((e: unknown) => { spool = undefined; throw e; }));
/**
 * The message bytes for an attempt. From the database they are read whole before the SMTP
 * dialog starts: a store that fails then defers the attempt at once, instead of in the middle of
 * DATA (the bytes are one value there anyway). Files are streamed as they are read.
 */
async function bodyOf(id: string, sent: Uint8Array | undefined): Promise<() => Readable> {
  if (sent) { // with the message (queue/recent-bodies.ts): a Buffer arrives as a Uint8Array
    const b = Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength);
    return () => Readable.from([b]);
  }
  const spool = await spoolNow();
  if (opts.queue.store.kind === 'files') return () => spool.open(id);
  const chunks: Buffer[] = [];
  for await (const c of spool.open(id) as AsyncIterable<Buffer>) chunks.push(c);
  const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks); // (PgSpool yields one Buffer)
  return () => Readable.from([whole]);
}
const post = (m: FromWorker) => parentPort!.postMessage(m);
const resolver = resolverFor(opts.mx.nameservers);
const sts = opts.mx.mtaSts ? new MtaSts({ resolver, dataDir: opts.dataDir, onEvent: (e) => post({ n: 0, sts: e }) }) : undefined;
const limits = opts.limits ? await sharedLimits(opts.limits) : undefined;
const transport = new SmtpTransport({ ehloName: opts.ehloName, mx: opts.mx, resolver, deadMs: opts.deadMs, ...(sts ? { sts } : {}), ...(limits ? { shared: limits.routes() } : {}) });
let active = 0;
let closing: (() => void) | undefined;

parentPort!.on('message', (m: ToWorker) => {
  if (m.op === 'forgetDead') return transport.forgetDead();
  if (m.op === 'close') {
    const done = () => {
      const limitsClosed = transport.close().then(async () => { await limits?.close(); return limits?.pool.end(); }).catch(() => undefined);
      void Promise.all([limitsClosed, spool?.then((sp) => sp.close(), () => undefined)]).then(() => post({ n: m.n, results: [] }));
    };
    if (active === 0) done(); else closing = done;
    return;
  }
  active++;
  const { bytes, ...msg } = m.msg; // (only to cross the thread: rewriting and signing may change the body)
  bodyOf(msg.id, bytes)
    .then((body) => rewriteOutgoing({ ...msg, body }, opts.rules))
    .then((rewritten) => signOutgoing(rewritten, opts.dkim))
    .then((out) => transport.deliver(m.dest, out))
    .then((results) => post({ n: m.n, results }), (e: Error) => post({ n: m.n, error: e.message }))
    .finally(() => { if (--active === 0 && closing) closing(); });
});

/**
 * A few connections are enough: each route asks one at a time, and holds are renewed in one
 * statement. A database that stops answering must not hold deliveries for ever: past the
 * timeouts a check fails, and the mail is deferred.
 */
async function sharedLimits(o: NonNullable<typeof opts.limits>): Promise<PgLimits> {
  // loaded here: a relay on the file store never loads the PostgreSQL driver
  const [{ PgLimits }, { createPool }, { default: Pg }] = await Promise.all([import('../queue/pg-limits.js'), import('../queue/pg-connect.js'), import('pg')]);
  let pool: pg.Pool;
  if (!o.db && opts.queue.store.kind === 'postgresql') pool = createPool(opts.queue.store, { max: 4, application: 'smarthost delivery limits' });
  else {
    pool = new Pg.Pool({ max: 4, connectionTimeoutMillis: 10_000, query_timeout: 15_000, ...o.db });
    pool.on('error', () => undefined); // an idle connection the server dropped: the next query reports the outage
  }
  return new PgLimits(pool, { node: o.node, leaseMs: opts.queue.leaseMs, warn: (warning) => post({ n: 0, warning }) });
}
