// The daemon's wiring root (sendmail and the delivery thread have their own).
// createDaemon() builds the whole relay from a Config but holds no ports; listen() binds them
// (fastify's build-then-listen), so tests can build many, and then recovers
// the spool in the background: mail is taken at once, however long the queue.
// reload() swaps in a new Config at module boundaries (SIGHUP); close()
// drains: no new transactions, open ones finish, deliveries stop cleanly.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import type { Server } from 'node:net';
import { AccountThrottle, type AccountFailureCounts } from './auth/account-throttle.js';
import { AuthThrottle, plainAddress, type AuthFailureCounts } from './auth/throttle.js';
import { UserStore } from './auth/users-file.js';
import { rewriteOutgoing, type SenderRules } from './smtp/sender-rewrite.js';
import type { Config, Problem } from './config/types.js';
import type { Rate } from './config/units.js';
import { signOutgoing, type DkimSigner } from './dkim/sign.js';
import type { ControlReply } from './control/protocol.js';
import { closeControl, listenControl } from './control/control-server.js';
import { LocalTransport } from './local/local.js';
import { LocalRecipients } from './local/recipients.js';
import { localClient, type Envelope } from './mail/envelope.js';
import type { MailLog } from './maillog/maillog.js';
import { QueueManager } from './qmgr/qmgr.js';
import { QuotaGate } from './qmgr/quota-gate.js';
import { errorCode, isPermission } from './queue/bounded.js';
import { openLimits, openSpool } from './queue/open-spool.js';
import type { PgLimits } from './queue/pg-limits.js';
import { storeMessage, type Spool } from './queue/spool.js';
import { resolverFor } from './smtp/mx.js';
import { MtaSts, type StsEvent } from './mta-sts/mta-sts.js';
import { DeliveryThread } from './smtp/delivery-thread.js';
import { SmtpTransport, type RemoteDestination } from './smtp/transport.js';
import type { OutgoingMessage, RcptResult } from './mail/delivery.js';
import { ConnectionLimits } from './smtpd/connection-limits.js';
import type { SmtpdDeps } from './smtpd/listener.js';
import { ListenerSet, type BoundListener } from './smtpd/listener-set.js';
import { ReverseLookup } from './smtpd/reverse-lookup.js';
import { loadServerCert } from './tls/server-cert.js';
import { checkAssertionKeys } from './oauth/client-assertion.js';
import { listenMetrics, type MetricsListener } from './metrics/metrics-server.js';
import { SmarthostMetrics, type SharedQueueSnapshot } from './metrics/smarthost-metrics.js';
import { serveApi, type ApiServer } from './http/wire.js';
import { DeliveryOutcomes } from './events/outcomes.js';
import { SuppressionList, suppressionFile } from './events/suppression-list.js';
import { WebhookOutbox } from './events/webhooks.js';
import type { CheckFinding } from './http/ops.js';

/** How often the spool is scanned for mail nobody announced (SMARTHOST_RESCAN_MS overrides it, for tests). */
const RESCAN_MS = 60_000;
const RESCAN_MIN_AGE_MS = 30_000;

export const VERSION = '0.1.0';

export type { BoundListener } from './smtpd/listener-set.js';

export interface Daemon {
  readonly spool: Spool;
  readonly qmgr: QueueManager;
  listen(): Promise<BoundListener[]>;
  /** Applies a new config without dropping sessions; returns the problems that kept it from applying (none: applied). */
  reload(next: Config): Promise<readonly Problem[]>;
  /** Graceful stop: sessions get `graceMs` to finish their transaction, deliveries under way up to `graceMs` too. */
  close(graceMs?: number): Promise<void>;
}

/** Everything that depends on the config and is rebuilt by a reload. */
interface Generation {
  readonly config: Config;
  readonly smtp: Outbound;
  readonly local: LocalTransport;
  readonly deps: SmtpdDeps;
}

/** Outbound SMTP as the queue manager uses it: on a worker thread, or on this one. */
interface Outbound {
  deliver(dest: RemoteDestination, msg: OutgoingMessage): Promise<RcptResult[]>;
  forgetDead(): void;
  close(): Promise<void>;
}

/** Postfix smtp_generic_maps + myorigin, then DKIM: only mail that leaves the host is rewritten and signed. */
function inlineOutbound(t: SmtpTransport, rules: SenderRules, dkim: readonly DkimSigner[]): Outbound {
  return {
    deliver: async (dest, msg) => t.deliver(dest, await signOutgoing(await rewriteOutgoing(msg, rules), dkim)),
    forgetDead: () => t.forgetDead(),
    close: () => t.close(),
  };
}

export interface DaemonOptions {
  readonly log: MailLog;
  readonly onQueued?: (e: Envelope) => void;
  /** `smarthost check`'s environment findings, for the console (cli/ owns them). */
  readonly check?: (c: Config) => Promise<readonly CheckFinding[]>;
}

export async function createDaemon(config: Config, opts: DaemonOptions): Promise<Daemon> {
  const { log } = opts;
  const spool = await openSpool(config.queue, config.dataDir, {
    role: 'daemon',
    // the advice about owners only when the owner is the problem; other errors (EIO, or EMFILE
    // still after retries) leave the file for the rescan, which picks up messages it does not know
    onUnreadable: (id, e) => log.warning(isPermission(e)
      ? `${id}: queue file cannot be read (${errorCode(e)}); it stays in the queue untouched: give it to the user smarthost runs as (chown) and restart`
      : `${id}: queue file cannot be read (${e.message}); it stays in the queue untouched and is tried again at the next queue rescan`, 'qmgr'),
  });
  // On a shared store the cluster-wide limits count in the same database for every node:
  // route rate and concurrency, quotas, AUTH failures (queue/pg-limits.ts).
  const limits = await openLimits(config.queue, spool, (m) => log.warning(m, 'qmgr'));
  // route quotas count across reloads and restarts (data_dir/quota.json, or the shared database)
  const quotas = limits ? new QuotaGate(limits.quotas()) : await QuotaGate.open(config.dataDir, (m) => log.warning(m, 'qmgr'));
  const d = new Relay(config, opts, spool, limits, quotas);
  d.gen = await d.build(config);
  d.qmgr = d.newQueueManager(config);
  return { spool, qmgr: d.qmgr, reload: (next) => d.reload(next), listen: () => d.listen(), close: (graceMs = 30_000) => d.close(graceMs) };
}

const routesOf = (c: Config) => ({ localDomains: c.local.domains, routes: c.routes, ...(c.relay ? { relay: c.relay } : {}) });

/**
 * The daemon's state, built once by createDaemon(): what outlives a reload (counts, users,
 * metrics, the queue manager, the servers) and the current Generation (`gen`).
 */
class Relay {
  readonly log: MailLog; readonly connections: ConnectionLimits; readonly freeBytes: () => Promise<number | undefined>;
  readonly reverse = new ReverseLookup(); readonly ticketKeys = crypto.randomBytes(48);
  // kept across reloads unless their setting changes: failure counts and loaded users survive a SIGHUP
  users: UserStore; throttle: AuthFailureCounts; accounts: AccountFailureCounts | undefined;
  readonly metrics: SmarthostMetrics; readonly listeners: ListenerSet;
  readonly suppression: SuppressionList; webhooks: WebhookOutbox | undefined; readonly outcomes: DeliveryOutcomes;
  gen!: Generation; qmgr!: QueueManager; // set by createDaemon() right after construction; gen again by each reload
  sharedCounts: SharedQueueSnapshot['byNode'] = []; // refreshed by each poll of the shared store
  // the servers; api ([http]) is restarted only when its own settings change at a reload (open event streams end then)
  metricsListener: MetricsListener | undefined; api: ApiServer | undefined; control: Server | undefined;
  recovery: Promise<void> | undefined; rescanTimer: NodeJS.Timeout | undefined;
  closing = false; rescanning = false; adopting = false;

  constructor(readonly config: Config, readonly opts: DaemonOptions, readonly spool: Spool, readonly limits: PgLimits | undefined, readonly quotas: QuotaGate) {
    const log = this.log = opts.log;
    this.connections = new ConnectionLimits(config.limits.connections, config.limits.connectionsPerIp, config.limits.connectionRate);
    this.freeBytes = freeSpace(config.dataDir); // data_dir cannot change at a reload
    this.users = new UserStore(config.auth.usersFile);
    this.throttle = this.authThrottle(config.limits.authFailures);
    this.accounts = this.accountThrottle(config.limits.authFailuresPerAccount);
    this.metrics = new SmarthostMetrics({
      version: VERSION, queue: () => this.qmgr.snapshot(), outbox: () => this.webhooks?.depth() ?? 0,
      ...(spool.shared ? { shared: () => ({ byNode: this.sharedCounts, takeovers: spool.shared!.stats.takeovers, lost: spool.shared!.stats.lost }) } : {}),
    });
    // delivery events: the suppression list (kept across reloads, its settings follow them) and webhooks
    this.suppression = new SuppressionList(suppressionFile(config.dataDir), config.suppression, Date.now, (m) => log.warning(m, 'qmgr'));
    this.webhooks = this.newWebhooks(config);
    this.outcomes = new DeliveryOutcomes({ suppression: this.suppression, log, spool, webhooks: () => this.webhooks });
    log.subscribe((e) => { if (e.event === 'notice' && e['kind'] === 'delay' && e.queue_id) void this.outcomes.delayed(e.queue_id).catch(() => undefined); });
    this.listeners = new ListenerSet(log);
  }

  readonly observe = {
    connection: (l: string, open: boolean) => (open ? this.metrics.connectionOpened(l) : this.metrics.connectionClosed(l)),
    authFailed: () => this.metrics.authFailed(),
    received: (bytes: number, seconds: number) => this.metrics.received(bytes, seconds),
  };
  readonly onQueued = (e: Envelope) => { this.opts.onQueued?.(e); this.qmgr.enqueue(e); };
  /** Mail that did not come through smtpd (which logs its own): the "(queue active)" line, then delivery. */
  readonly queueNew = (e: Envelope) => { this.log.queued(e.id, e.sender, e.size, e.recipients.length); this.onQueued(e); };
  /** MTA-STS, wherever delivery runs: one log line and its metrics per event. */
  readonly onSts = (e: StsEvent) => { this.log.mtaSts(e); this.metrics.mtaSts(e); };
  // in memory; on a shared store PgLimits' counts take their place
  authThrottle(r: Rate): AuthFailureCounts { return this.limits ? this.limits.authFailures(r) : new AuthThrottle(r); }
  accountThrottle(r: Rate | undefined): AccountFailureCounts | undefined { return r ? (this.limits ? this.limits.accountFailures(r) : new AccountThrottle(r)) : undefined; }
  newWebhooks(c: Config): WebhookOutbox | undefined {
    return c.webhooks.length ? new WebhookOutbox(c.dataDir, c.webhooks, (m) => this.log.warning(m, 'qmgr'), (r) => this.metrics.webhookPost(r)) : undefined;
  }

  inlineTransport(c: Config, deadMs: number): SmtpTransport {
    const resolver = resolverFor(c.mx.nameservers);
    const sts = c.mx.mtaSts ? new MtaSts({ resolver, dataDir: c.dataDir, onEvent: this.onSts }) : undefined;
    return new SmtpTransport({ ehloName: c.hostname, mx: c.mx, resolver, deadMs, ...(sts ? { sts } : {}), ...(this.limits ? { shared: this.limits.routes() } : {}) });
  }

  /** What one config generation needs; `prev` (at a reload) decides which long-lived counts are replaced. */
  async build(c: Config, prev?: Config): Promise<Generation> {
    const { log, spool, limits } = this;
    checkAssertionKeys([c.relay?.oauth, ...c.routes.map((r) => r.oauth)]); // an app-only certificate that cannot sign refuses the config
    if (prev && prev.auth.usersFile !== c.auth.usersFile) this.users = new UserStore(c.auth.usersFile);
    if (prev && JSON.stringify(prev.limits.authFailures) !== JSON.stringify(c.limits.authFailures)) this.throttle = this.authThrottle(c.limits.authFailures);
    if (prev && JSON.stringify(prev.limits.authFailuresPerAccount) !== JSON.stringify(c.limits.authFailuresPerAccount)) this.accounts = this.accountThrottle(c.limits.authFailuresPerAccount);
    const cert = c.listen.some((l) => l.tls !== 'none') ? await loadServerCert(c.tls, c.dataDir, c.hostname, (m) => log.warning(m), c.listen.map((l) => l.host)) : undefined;
    const rules: SenderRules = { map: c.rewrite.senders, hostname: c.hostname };
    // the keys cross to the delivery thread as PEM text (the config holds KeyObjects)
    const dkim: DkimSigner[] = c.dkim.map((d) => ({
      domain: d.domain, selector: d.selector, algorithm: d.algorithm, headers: d.headers,
      privateKey: d.key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    }));
    const deadMs = Math.min(60_000, c.queue.retryMinMs);
    // outbound SMTP on a second core by default; SMARTHOST_DELIVERY_THREAD=0 keeps it on this thread
    const smtp: Outbound = process.env.SMARTHOST_DELIVERY_THREAD === '0' ? inlineOutbound(this.inlineTransport(c, deadMs), rules, dkim)
      : new DeliveryThread({ dataDir: c.dataDir, queue: c.queue, ehloName: c.hostname, mx: c.mx, deadMs, rules, dkim,
        ...(limits ? { limits: { node: c.queue.nodeName } } : {}) }, this.onSts, (m) => log.warning(m, 'smtp'));
    const recipients = LocalRecipients.from(c.local, (m) => log.warning(m, 'local'));
    const local = new LocalTransport({
      recipients, maildir: c.local.maildir, hostname: c.hostname, chown: process.getuid?.() === 0,
      resubmit: async (sender, to, message) => {
        const e = await storeMessage(spool, { sender, recipients: to.map((address) => ({ address })), arrived: new Date().toISOString(), body: '8BITMIME', client: localClient(c.hostname) }, message);
        this.queueNew(e);
        return e.id;
      },
    });
    const { users, throttle, accounts, connections, reverse, ticketKeys, freeBytes, onQueued, observe } = this;
    const deps: SmtpdDeps = {
      hostname: c.hostname, limits: c.limits, localDomains: c.local.domains,
      localExists: (rcpt: string) => recipients.exists(rcpt),
      spool, log, users, throttle, ...(accounts ? { accounts } : {}), connections, reverse, ticketKeys, auth: c.auth,
      freeBytes, minTlsVersion: c.tls.minVersion,
      ...(cert ? { cert } : {}), onQueued, inflow: () => this.qmgr.inflow(), observe,
    };
    return { config: c, smtp, local, deps };
  }

  newQueueManager(config: Config): QueueManager {
    return new QueueManager({
      spool: this.spool, log: this.log, queue: config.queue, hostname: config.hostname, routes: routesOf(config),
      onResult: (route, r, arrivedMs) => this.metrics.delivery(route, r.outcome, (Date.now() - arrivedMs) / 1000),
      transports: {
        deliver: async (dest, msg) => {
          const g = this.gen; // the generation current when the attempt starts sees it through
          return dest.kind === 'local' ? g.local.deliver(msg) : this.outcomes.deliver(msg, (m) => this.quotas.deliver(dest, m, (q) => g.smtp.deliver(dest, q)));
        },
        forgetDead: () => this.gen.smtp.forgetDead(),
      },
    });
  }

  /** Mail `smarthost sendmail` wrote into the spool while we run (Postfix pickup). */
  async pickup(ids: readonly string[] | 'ALL'): Promise<ControlReply> {
    const done: string[] = [], missing: string[] = [];
    for (const id of ids === 'ALL' ? [] : ids) {
      if (this.qmgr.has(id)) { done.push(id); continue; } // already known (found at start): nothing to log twice
      const entry = await this.spool.get(id);
      if (!entry) { missing.push(id); continue; }
      this.log.pickup(id, entry.envelope.client.uid, entry.envelope.sender);
      this.queueNew(entry.envelope);
      done.push(id);
    }
    return { ok: true, done, missing };
  }

  /** `smarthost auth unblock`: forget the failed-AUTH counts of these client addresses (ALL: of every address and account). */
  async unblock(ips: readonly string[] | 'ALL'): Promise<ControlReply> {
    const done = [...await this.throttle.unblock(ips), ...(ips === 'ALL' ? await this.accounts?.unblock('ALL') ?? [] : []).map((a) => `user ${a}`)];
    if (done.length) this.log.authUnblocked(done);
    const missing = ips === 'ALL' ? [] : ips.filter((ip) => !done.includes(plainAddress(ip)));
    return { ok: true, done, missing };
  }

  /** `smarthost auth unblock --user NAME`: forget the failed-AUTH counts of these accounts. */
  async unblockUsers(names: readonly string[] | 'ALL'): Promise<ControlReply> {
    const had = await this.accounts?.unblock(names) ?? [];
    const done = had.map((a) => `user ${a}`);
    if (done.length) this.log.authUnblocked(done);
    return { ok: true, done, missing: names === 'ALL' ? [] : names.filter((n) => !had.includes(n)).map((n) => `user ${n}`) };
  }

  async reload(next: Config): Promise<readonly Problem[]> {
    const { log } = this;
    const refuse = (path: string, what: string): Problem[] => [{ file: next.source, path, message: `${what} cannot change while smarthost runs`, fix: 'restart smarthost to apply it' }];
    if (next.dataDir !== this.gen.config.dataDir) return refuse('data_dir', `data_dir (${this.gen.config.dataDir} -> ${next.dataDir})`);
    let g: Generation;
    try { g = await this.build(next, this.gen.config); } catch (e) {
      return [{ file: next.source, path: 'tls', message: `cannot load the new configuration: ${(e as Error).message}`, fix: 'fix the certificate or key files, then send SIGHUP again' }];
    }
    const old = this.gen;
    try { await this.listeners.apply(next.listen, g.deps); } catch (e) {
      void g.smtp.close();
      const l = (e as { listen?: Config['listen'][number] }).listen;
      return [{ file: next.source, path: 'listen', message: `cannot listen on ${l?.address}: ${(e as Error).message}`, fix: 'free the address or choose another, then send SIGHUP again' }];
    }
    // [log] is applied by cli/start.ts, which owns the log's destination
    this.connections.setLimits(next.limits.connections, next.limits.connectionsPerIp, next.limits.connectionRate);
    await this.serveMetrics(next).catch((e: Error) => log.warning(`metrics: cannot listen on ${next.metrics?.address}: ${e.message}`));
    this.gen = g; // (after serveMetrics, which compares with the old generation's address)
    this.suppression.settings = next.suppression;
    if (JSON.stringify(next.webhooks) !== JSON.stringify(old.config.webhooks)) {
      this.webhooks?.close();
      try { this.webhooks = this.newWebhooks(next); } catch (e) { this.webhooks = undefined; log.warning(`webhooks: ${(e as Error).message}; no events are posted until the next reload`); }
    }
    await this.serveHttp(next).catch((e: Error) => log.warning(`http: cannot listen on ${next.http?.address}: ${e.message}`));
    this.qmgr.reconfigure({ queue: next.queue, hostname: next.hostname, routes: routesOf(next) });
    void old.smtp.close(); // idle cached upstream sessions belong to the old routes and credentials
    return [];
  }

  async serveMetrics(c: Config): Promise<void> {
    if (this.metricsListener && c.metrics?.address === this.gen.config.metrics?.address) return;
    await this.metricsListener?.close();
    this.metricsListener = undefined;
    if (!c.metrics) return;
    this.metricsListener = await listenMetrics(c.metrics, () => this.metrics.render(), { onError: (e) => this.log.warning(`metrics: ${e.message}`) });
    this.log.metricsListening(`http://${c.metrics.host.includes(':') ? `[${c.metrics.host}]` : c.metrics.host}:${this.metricsListener.port}/metrics`);
  }

  async serveHttp(c: Config): Promise<void> {
    if (this.api?.settings === JSON.stringify(c.http)) return;
    await this.api?.close();
    this.api = undefined;
    if (!c.http) return;
    const { spool, log, qmgr, opts } = this;
    const cert = c.http.tls ? await loadServerCert(c.tls, c.dataDir, c.hostname, (m) => log.warning(m), [c.http.host]) : undefined;
    this.api = await serveApi({
      spool, log, version: VERSION, config: () => this.gen.config, ...(cert ? { cert } : {}),
      localExists: (r) => this.gen.deps.localExists?.(r) ?? true, queued: this.queueNew,
      act: async (op, ids) => { const r = await qmgr.act(op, ids); return { done: [...r.done], missing: [...r.missing] }; },
      queueSize: () => { const q = qmgr.snapshot(); return q.active + q.deferred + q.held; },
      suppression: this.suppression, observe: (route, method, status) => this.metrics.apiRequest(route, method, status),
      ...(opts.check ? { check: opts.check } : {}),
    });
  }

  /**
   * Postfix's pickup also polls: mail `smarthost sendmail` queued while the control socket could
   * not be reached (a user without access to it, a daemon restarting) is found within a minute.
   * Only files older than half a minute: a younger one may be a commit still waiting for its fsync.
   */
  async rescan(): Promise<void> {
    if (this.rescanning) return;
    this.rescanning = true;
    try {
      const ids = await this.spool.unclaimed?.((id) => this.qmgr.has(id), Date.now() - RESCAN_MIN_AGE_MS);
      if (ids?.length) await this.pickup(ids);
    } catch (e) { this.log.warning(`queue rescan failed: ${(e as Error).message}`, 'qmgr'); } finally { this.rescanning = false; }
  }

  /**
   * Shared store: mail due now that no node delivers (from `smarthost sendmail`, a flush, or a
   * node whose lease expired) and that this node does not know yet. Woken by LISTEN/NOTIFY and a poll.
   */
  async adoptDue(): Promise<void> {
    const { shared } = this.spool;
    if (this.adopting || this.closing || !shared) return;
    this.adopting = true;
    try {
      for (const m of await shared.due((id) => this.qmgr.has(id), 1000)) this.qmgr.adopt(m);
      if (this.gen.config.metrics) this.sharedCounts = await shared.counts(); // a GROUP BY over the whole queue: only for the gauges
    } catch (e) { this.log.warning(`cannot look for due mail in the shared queue: ${(e as Error).message}`, 'qmgr'); } finally { this.adopting = false; }
  }

  /**
   * Recovery starts before the first port is bound (the spool must know, before any mail comes
   * in, which files are its own), and goes on in the background; the rescan starts after it.
   */
  recoverInBackground(): Promise<void> {
    return this.qmgr.start().then((report) => {
      if (this.closing) return; // cut short by close(): not a report of the queue
      this.log.spoolRecovered(report.messages, report.discarded, report.corrupt);
      if (this.spool.shared) { this.spool.shared.onWake(() => void this.adoptDue()); return; } // other nodes say when there is work
      this.rescanTimer = setInterval(() => void this.rescan(), Number(process.env.SMARTHOST_RESCAN_MS) || RESCAN_MS);
      this.rescanTimer.unref();
    }, (e: Error) => this.log.warning(`queue recovery failed: ${e.message}; mail already queued is delivered only after a restart`, 'qmgr'));
  }

  async listen(): Promise<BoundListener[]> {
    const { config, qmgr } = this;
    this.recovery = this.recoverInBackground(); // (creates data_dir's queue directories first, at once)
    this.control = await listenControl(config.dataDir, async (req) => req.op === 'pickup' ? this.pickup(req.ids)
      : req.op === 'unblock' ? this.unblock(req.ids) : req.op === 'unblock-user' ? this.unblockUsers(req.ids) : { ok: true, ...await qmgr.act(req.op, req.ids) });
    const out: BoundListener[] = [];
    for (const l of config.listen) out.push(await this.listeners.bind(l, this.gen.deps));
    await this.serveMetrics(config);
    await this.serveHttp(config);
    return out;
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const apiClosed = this.api?.close(); // no new API requests; those under way finish
    // no new connections or transactions; a transaction under way may finish within the grace
    const sessionsDone = this.listeners.close(graceMs);
    clearInterval(this.rescanTimer);
    if (this.control) await closeControl(this.control);
    // deliveries under way finish (or are cut at the grace and retried after restart)
    await Promise.all([sessionsDone, this.qmgr.close(Math.min(graceMs, 10_000))]);
    await this.gen.smtp.close();
    await this.limits?.close(); // (before the spool ends the pool they share)
    await this.metricsListener?.close();
    await apiClosed;
    this.webhooks?.close();
    await this.spool.close(); // (stops a recovery still under way)
    await this.recovery;
  }
}

/** Free bytes under `dir`, for MAIL FROM's SIZE=: one statfs a second at most, not one per message. */
function freeSpace(dir: string): () => Promise<number | undefined> {
  let last: { at: number; free: Promise<number | undefined> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > 1000) last = { at: now, free: fsp.statfs(dir).then((s) => s.bavail * s.bsize, () => undefined) };
    return last.free;
  };
}
