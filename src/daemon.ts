// The daemon's wiring root (sendmail and the delivery thread have their own).
// createDaemon() builds the
// whole relay from a Config but holds no ports; listen() binds them
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
import type { Config } from './config/types.js';
import type { Rate } from './config/units.js';
import { signOutgoing, type DkimSigner } from './dkim/sign.js';
import type { Problem } from './config/types.js';
import type { ControlReply } from './control/protocol.js';
import { closeControl, listenControl } from './control/control-server.js';
import { LocalTransport } from './local/local.js';
import { LocalRecipients } from './local/recipients.js';
import { localClient, type Envelope } from './mail/envelope.js';
import type { MailLog } from './maillog/maillog.js';
import { QueueManager } from './qmgr/qmgr.js';
import { QuotaGate } from './qmgr/quota-gate.js';
import { errorCode, isPermission } from './queue/bounded.js';
import { openSpool } from './queue/open-spool.js';
import { PgLimits } from './queue/pg-limits.js';
import { PgSpool } from './queue/pg-spool.js';
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
  const limits = spool instanceof PgSpool ? new PgLimits(spool.pool, { node: config.queue.nodeName, leaseMs: config.queue.leaseMs, warn: (m) => log.warning(m, 'qmgr') }) : undefined;
  // route quotas count across reloads and restarts (data_dir/quota.json, or the shared database)
  const quotas = limits ? new QuotaGate(limits.quotas()) : await QuotaGate.open(config.dataDir, (m) => log.warning(m, 'qmgr'));
  const connections = new ConnectionLimits(config.limits.connections, config.limits.connectionsPerIp, config.limits.connectionRate);
  const reverse = new ReverseLookup();
  const ticketKeys = crypto.randomBytes(48);
  const freeBytes = freeSpace(config.dataDir); // data_dir cannot change at a reload
  // kept across reloads unless their setting changes: failure counts and loaded users survive a SIGHUP
  let users = new UserStore(config.auth.usersFile);
  // in memory; on a shared store PgLimits' counts take their place
  const authThrottle = (r: Rate): AuthFailureCounts => (limits ? limits.authFailures(r) : new AuthThrottle(r));
  let throttle = authThrottle(config.limits.authFailures);
  const accountThrottle = (r: Rate | undefined): AccountFailureCounts | undefined => (r ? (limits ? limits.accountFailures(r) : new AccountThrottle(r)) : undefined);
  let accounts = accountThrottle(config.limits.authFailuresPerAccount);

  const onQueued = (e: Envelope) => { opts.onQueued?.(e); qmgr.enqueue(e); };
  /** Mail that did not come through smtpd (which logs its own): the "(queue active)" line, then delivery. */
  const queueNew = (e: Envelope) => { log.queued(e.id, e.sender, e.size, e.recipients.length); onQueued(e); };
  let sharedCounts: SharedQueueSnapshot['byNode'] = []; // refreshed by each poll of the shared store
  const metrics = new SmarthostMetrics({
    version: VERSION, queue: () => qmgr.snapshot(), outbox: () => webhooks?.depth() ?? 0,
    ...(spool.shared ? { shared: () => ({ byNode: sharedCounts, takeovers: spool.shared!.stats.takeovers, lost: spool.shared!.stats.lost }) } : {}),
  });
  const observe = {
    connection: (l: string, open: boolean) => (open ? metrics.connectionOpened(l) : metrics.connectionClosed(l)),
    authFailed: () => metrics.authFailed(),
    received: (bytes: number, seconds: number) => metrics.received(bytes, seconds),
  };

  /** MTA-STS, wherever delivery runs: one log line and its metrics per event. */
  const onSts = (e: StsEvent) => { log.mtaSts(e); metrics.mtaSts(e); };
  const inlineTransport = (c: Config, deadMs: number) => {
    const resolver = resolverFor(c.mx.nameservers);
    const sts = c.mx.mtaSts ? new MtaSts({ resolver, dataDir: c.dataDir, onEvent: onSts }) : undefined;
    return new SmtpTransport({ ehloName: c.hostname, mx: c.mx, resolver, deadMs, ...(sts ? { sts } : {}), ...(limits ? { shared: limits.routes() } : {}) });
  };

  async function build(c: Config, prev?: Config): Promise<Generation> {
    checkAssertionKeys([c.relay?.oauth, ...c.routes.map((r) => r.oauth)]); // an app-only certificate that cannot sign refuses the config
    if (prev && prev.auth.usersFile !== c.auth.usersFile) users = new UserStore(c.auth.usersFile);
    if (prev && JSON.stringify(prev.limits.authFailures) !== JSON.stringify(c.limits.authFailures)) throttle = authThrottle(c.limits.authFailures);
    if (prev && JSON.stringify(prev.limits.authFailuresPerAccount) !== JSON.stringify(c.limits.authFailuresPerAccount)) accounts = accountThrottle(c.limits.authFailuresPerAccount);
    const cert = c.listen.some((l) => l.tls !== 'none') ? await loadServerCert(c.tls, c.dataDir, c.hostname, (m) => log.warning(m), c.listen.map((l) => l.host)) : undefined;
    const rules: SenderRules = { map: c.rewrite.senders, hostname: c.hostname };
    // the keys cross to the delivery thread as PEM text (the config holds KeyObjects)
    const dkim: DkimSigner[] = c.dkim.map((d) => ({
      domain: d.domain, selector: d.selector, algorithm: d.algorithm, headers: d.headers,
      privateKey: d.key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    }));
    const deadMs = Math.min(60_000, c.queue.retryMinMs);
    // outbound SMTP on a second core by default; SMARTHOST_DELIVERY_THREAD=0 keeps it on this thread
    const smtp: Outbound = process.env.SMARTHOST_DELIVERY_THREAD === '0' ? inlineOutbound(inlineTransport(c, deadMs), rules, dkim)
      : new DeliveryThread({ dataDir: c.dataDir, queue: c.queue, ehloName: c.hostname, mx: c.mx, deadMs, rules, dkim,
        ...(limits ? { limits: { node: c.queue.nodeName } } : {}) }, onSts, (m) => log.warning(m, 'smtp'));
    const recipients = LocalRecipients.from(c.local, (m) => log.warning(m, 'local'));
    const local = new LocalTransport({
      recipients, maildir: c.local.maildir, hostname: c.hostname, chown: process.getuid?.() === 0,
      resubmit: async (sender, to, message) => {
        const e = await storeMessage(spool, {
          sender, recipients: to.map((address) => ({ address })), arrived: new Date().toISOString(), body: '8BITMIME',
          client: localClient(c.hostname),
        }, message);
        queueNew(e);
        return e.id;
      },
    });
    const deps: SmtpdDeps = {
      hostname: c.hostname, limits: c.limits, localDomains: c.local.domains,
      localExists: (rcpt: string) => recipients.exists(rcpt),
      spool, log, users, throttle, ...(accounts ? { accounts } : {}), connections, reverse, ticketKeys, auth: c.auth,
      freeBytes,
      minTlsVersion: c.tls.minVersion,
      ...(cert ? { cert } : {}), onQueued, inflow: () => qmgr.inflow(), observe,
    };
    return { config: c, smtp, local, deps };
  }

  // delivery events: the suppression list (kept across reloads, its settings follow them) and webhooks
  const suppression = new SuppressionList(suppressionFile(config.dataDir), config.suppression, Date.now, (m) => log.warning(m, 'qmgr'));
  const newWebhooks = (c: Config) => (c.webhooks.length ? new WebhookOutbox(c.dataDir, c.webhooks, (m) => log.warning(m, 'qmgr'), (r) => metrics.webhookPost(r)) : undefined);
  let webhooks = newWebhooks(config);
  const outcomes = new DeliveryOutcomes({ suppression, log, spool, webhooks: () => webhooks });
  log.subscribe((e) => { if (e.event === 'notice' && e['kind'] === 'delay' && e.queue_id) void outcomes.delayed(e.queue_id).catch(() => undefined); });

  const routesOf = (c: Config) => ({ localDomains: c.local.domains, routes: c.routes, ...(c.relay ? { relay: c.relay } : {}) });
  let gen = await build(config);
  const qmgr: QueueManager = new QueueManager({
    spool, log, queue: config.queue, hostname: config.hostname, routes: routesOf(config),
    onResult: (route, r, arrivedMs) => metrics.delivery(route, r.outcome, (Date.now() - arrivedMs) / 1000),
    transports: {
      deliver: async (dest, msg) => {
        const g = gen; // the generation current when the attempt starts sees it through
        return dest.kind === 'local' ? g.local.deliver(msg) : outcomes.deliver(msg, (m) => quotas.deliver(dest, m, (q) => g.smtp.deliver(dest, q)));
      },
      forgetDead: () => gen.smtp.forgetDead(),
    },
  });

  /** Mail `smarthost sendmail` wrote into the spool while we run (Postfix pickup). */
  async function pickup(ids: readonly string[] | 'ALL'): Promise<ControlReply> {
    const done: string[] = [];
    const missing: string[] = [];
    for (const id of ids === 'ALL' ? [] : ids) {
      if (qmgr.has(id)) { done.push(id); continue; } // already known (found at start): nothing to log twice
      const entry = await spool.get(id);
      if (!entry) { missing.push(id); continue; }
      log.pickup(id, entry.envelope.client.uid, entry.envelope.sender);
      queueNew(entry.envelope);
      done.push(id);
    }
    return { ok: true, done, missing };
  }

  /** `smarthost auth unblock`: forget the failed-AUTH counts of these client addresses (ALL: of every address and account). */
  async function unblock(ips: readonly string[] | 'ALL'): Promise<ControlReply> {
    const done = [...await throttle.unblock(ips), ...(ips === 'ALL' ? await accounts?.unblock('ALL') ?? [] : []).map((a) => `user ${a}`)];
    if (done.length) log.authUnblocked(done);
    const missing = ips === 'ALL' ? [] : ips.filter((ip) => !done.includes(plainAddress(ip)));
    return { ok: true, done, missing };
  }

  /** `smarthost auth unblock --user NAME`: forget the failed-AUTH counts of these accounts. */
  async function unblockUsers(names: readonly string[] | 'ALL'): Promise<ControlReply> {
    const had = await accounts?.unblock(names) ?? [];
    const done = had.map((a) => `user ${a}`);
    if (done.length) log.authUnblocked(done);
    return { ok: true, done, missing: names === 'ALL' ? [] : names.filter((n) => !had.includes(n)).map((n) => `user ${n}`) };
  }

  const listeners = new ListenerSet(log);

  async function reload(next: Config): Promise<readonly Problem[]> {
    const refuse = (path: string, what: string): Problem[] => [{ file: next.source, path, message: `${what} cannot change while smarthost runs`, fix: 'restart smarthost to apply it' }];
    if (next.dataDir !== gen.config.dataDir) return refuse('data_dir', `data_dir (${gen.config.dataDir} -> ${next.dataDir})`);
    let g: Generation;
    try { g = await build(next, gen.config); } catch (e) {
      return [{ file: next.source, path: 'tls', message: `cannot load the new configuration: ${(e as Error).message}`, fix: 'fix the certificate or key files, then send SIGHUP again' }];
    }
    const old = gen;
    try { await listeners.apply(next.listen, g.deps); } catch (e) {
      void g.smtp.close();
      const l = (e as { listen?: Config['listen'][number] }).listen;
      return [{ file: next.source, path: 'listen', message: `cannot listen on ${l?.address}: ${(e as Error).message}`, fix: 'free the address or choose another, then send SIGHUP again' }];
    }
    // [log] is applied by cli/start.ts, which owns the log's destination
    connections.setLimits(next.limits.connections, next.limits.connectionsPerIp, next.limits.connectionRate);
    await serveMetrics(next).catch((e: Error) => log.warning(`metrics: cannot listen on ${next.metrics?.address}: ${e.message}`));
    gen = g;
    suppression.settings = next.suppression;
    if (JSON.stringify(next.webhooks) !== JSON.stringify(old.config.webhooks)) {
      webhooks?.close();
      try { webhooks = newWebhooks(next); } catch (e) { webhooks = undefined; log.warning(`webhooks: ${(e as Error).message}; no events are posted until the next reload`); }
    }
    await serveHttp(next).catch((e: Error) => log.warning(`http: cannot listen on ${next.http?.address}: ${e.message}`));
    qmgr.reconfigure({ queue: next.queue, hostname: next.hostname, routes: routesOf(next) });
    void old.smtp.close(); // idle cached upstream sessions belong to the old routes and credentials
    return [];
  }

  let metricsListener: MetricsListener | undefined;
  async function serveMetrics(c: Config): Promise<void> {
    if (metricsListener && c.metrics?.address === gen.config.metrics?.address) return;
    await metricsListener?.close();
    metricsListener = undefined;
    if (!c.metrics) return;
    metricsListener = await listenMetrics(c.metrics, () => metrics.render(), { onError: (e) => log.warning(`metrics: ${e.message}`) });
    log.metricsListening(`http://${c.metrics.host.includes(':') ? `[${c.metrics.host}]` : c.metrics.host}:${metricsListener.port}/metrics`);
  }

  /** [http]: restarted only when its own settings change at a reload (open event streams end then). */
  let api: ApiServer | undefined;
  async function serveHttp(c: Config): Promise<void> {
    if (api?.settings === JSON.stringify(c.http)) return;
    await api?.close();
    api = undefined;
    if (!c.http) return;
    const cert = c.http.tls ? await loadServerCert(c.tls, c.dataDir, c.hostname, (m) => log.warning(m), [c.http.host]) : undefined;
    api = await serveApi({
      spool, log, version: VERSION, config: () => gen.config, ...(cert ? { cert } : {}),
      localExists: (r) => gen.deps.localExists?.(r) ?? true, queued: queueNew,
      act: async (op, ids) => {
        const r = await qmgr.act(op, ids);
        return { done: [...r.done], missing: [...r.missing] };
      },
      queueSize: () => { const q = qmgr.snapshot(); return q.active + q.deferred + q.held; },
      suppression, observe: (route, method, status) => metrics.apiRequest(route, method, status),
      ...(opts.check ? { check: opts.check } : {}),
    });
  }

  /**
   * Postfix's pickup also polls: mail `smarthost sendmail` queued while the control socket could
   * not be reached (a user without access to it, a daemon restarting) is found within a minute.
   * Only files older than half a minute: a younger one may be a commit still waiting for its fsync.
   */
  let rescanning = false;
  async function rescan(): Promise<void> {
    if (rescanning) return;
    rescanning = true;
    try {
      const ids = await spool.unclaimed((id) => qmgr.has(id), Date.now() - RESCAN_MIN_AGE_MS);
      if (ids.length) await pickup(ids);
    } catch (e) {
      log.warning(`queue rescan failed: ${(e as Error).message}`, 'qmgr');
    } finally {
      rescanning = false;
    }
  }

  /**
   * Shared store: mail due now that no node delivers (from `smarthost sendmail`, a flush, or a
   * node whose lease expired) and that this node does not know yet. Woken by LISTEN/NOTIFY and a poll.
   */
  let adopting = false;
  async function adoptDue(): Promise<void> {
    if (adopting || closing || !spool.shared) return;
    adopting = true;
    try {
      for (const m of await spool.shared.due((id) => qmgr.has(id), 1000)) qmgr.adopt(m);
      sharedCounts = await spool.shared.counts();
    } catch (e) {
      log.warning(`cannot look for due mail in the shared queue: ${(e as Error).message}`, 'qmgr');
    } finally {
      adopting = false;
    }
  }

  /**
   * Recovery starts before the first port is bound (the spool must know, before any mail comes
   * in, which files are its own), and goes on in the background; the rescan starts after it.
   */
  let recovery: Promise<void> | undefined;
  let rescanTimer: NodeJS.Timeout | undefined;
  let closing = false;
  function recoverInBackground(): Promise<void> {
    return qmgr.start().then((report) => {
      if (closing) return; // cut short by close(): not a report of the queue
      log.spoolRecovered(report.messages, report.discarded, report.corrupt);
      if (spool.shared) { spool.shared.onWake(() => void adoptDue()); return; } // other nodes say when there is work
      rescanTimer = setInterval(() => void rescan(), Number(process.env.SMARTHOST_RESCAN_MS) || RESCAN_MS);
      rescanTimer.unref();
    }, (e: Error) => log.warning(`queue recovery failed: ${e.message}; mail already queued is delivered only after a restart`, 'qmgr'));
  }

  let control: Server | undefined;
  return {
    spool,
    qmgr,
    reload,
    async listen() {
      recovery = recoverInBackground(); // (creates data_dir's queue directories first, at once)
      control = await listenControl(config.dataDir, async (req) => req.op === 'pickup' ? pickup(req.ids)
        : req.op === 'unblock' ? unblock(req.ids) : req.op === 'unblock-user' ? unblockUsers(req.ids) : { ok: true, ...await qmgr.act(req.op, req.ids) });
      const out: BoundListener[] = [];
      for (const l of config.listen) out.push(await listeners.bind(l, gen.deps));
      await serveMetrics(config);
      await serveHttp(config);
      return out;
    },
    async close(graceMs = 30_000) {
      closing = true;
      const apiClosed = api?.close(); // no new API requests; those under way finish
      // no new connections or transactions; a transaction under way may finish within the grace
      const sessionsDone = listeners.close(graceMs);
      clearInterval(rescanTimer);
      if (control) await closeControl(control);
      // deliveries under way finish (or are cut at the grace and retried after restart)
      await Promise.all([sessionsDone, qmgr.close(Math.min(graceMs, 10_000))]);
      await gen.smtp.close();
      limits?.close(); // (before the spool ends the pool they share)
      await metricsListener?.close();
      await apiClosed;
      webhooks?.close();
      await spool.close(); // (stops a recovery still under way)
      await recovery;
    },
  };
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
