// The metrics smarthost exposes, and one small method per event the daemon
// reports. Queue sizes are not counted here: they are read from a snapshot
// at scrape time, so they can never drift from the queue manager's own state.
import type { StsEvent } from '../mta-sts/mta-sts.js';
import { Registry } from './registry.js';

/** What the queue manager holds right now; oldestArrivedMs is absent when the queue is empty. */
export interface QueueSnapshot {
  readonly active: number;
  readonly deferred: number;
  readonly held: number;
  readonly oldestArrivedMs?: number;
}

/** A shared store (PostgreSQL): the whole queue by node holding the lease ('' none) and state, as of its last poll; lease counts of this node. */
export interface SharedQueueSnapshot {
  readonly byNode: ReadonlyArray<{ readonly node: string; readonly state: string; readonly count: number; readonly oldestMs: number }>;
  readonly takeovers: number;
  readonly lost: number;
}

export type DeliveryStatus = 'sent' | 'deferred' | 'bounced';

export interface SmarthostMetricsOptions {
  readonly version: string;
  readonly queue: () => QueueSnapshot;
  /** Shared store only. */
  readonly shared?: () => SharedQueueSnapshot;
  /** Webhook events waiting in the outbox (absent: no [[webhook]]). */
  readonly outbox?: () => number;
  /** Test hook; defaults to Date.now. */
  readonly now?: () => number;
}

// End of DATA -> 250 is mostly one fdatasync: milliseconds on SSDs, up to a second on busy disks.
export const INTAKE_BUCKETS = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]);
// Arrival -> final result spans a fast relay (sub-second) to retries over hours, up to a day.
export const DELIVERY_BUCKETS = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14_400, 43_200, 86_400]);

export class SmarthostMetrics {
  private readonly registry = new Registry();
  private readonly queue: () => QueueSnapshot;
  /** Taken once per scrape, so both queue gauges describe the same moment. */
  private snapshot: QueueSnapshot = { active: 0, deferred: 0, held: 0 };

  private readonly deliveries = this.registry.counter('smarthost_deliveries_total',
    'Delivery results per recipient, by route and status', ['route', 'status']);
  private readonly deliveryDuration = this.registry.histogram('smarthost_delivery_duration_seconds',
    'Seconds from arrival to the final result (sent or bounced) per recipient', DELIVERY_BUCKETS);
  private readonly connections = this.registry.counter('smarthost_connections_total',
    'SMTP connections accepted, by listener', ['listener']);
  private readonly connectionsActive = this.registry.gauge('smarthost_connections_active',
    'SMTP connections open now, by listener', ['listener']);
  private readonly authFailures = this.registry.counter('smarthost_auth_failures_total', 'Failed SMTP AUTH attempts');
  private readonly messagesReceived = this.registry.counter('smarthost_messages_received_total',
    'Messages accepted into the queue');
  private readonly bytesReceived = this.registry.counter('smarthost_received_bytes_total',
    'Bytes of messages accepted into the queue');
  private readonly stsFetches = this.registry.counter('smarthost_mta_sts_policy_fetches_total',
    'MTA-STS policy fetches by outcome (ok, invalid, http_error, unreachable)', ['outcome']);
  private readonly stsRefused = this.registry.counter('smarthost_mta_sts_enforce_refused_total',
    'MX delivery attempts deferred by an MTA-STS policy in mode enforce, by cause (mx: no allowed MX host; tls: no verified TLS)', ['why']);
  private readonly stsTesting = this.registry.counter('smarthost_mta_sts_testing_failures_total',
    'What an MTA-STS policy in mode testing would have refused (mail sent anyway), by cause', ['why']);
  private readonly intakeDuration = this.registry.histogram('smarthost_intake_duration_seconds',
    'Seconds from the end of DATA to the 250 reply (spool write and fsync)', INTAKE_BUCKETS);

  private readonly apiRequests = this.registry.counter('smarthost_api_requests_total',
    'HTTP API requests, by route, method and status', ['route', 'method', 'status']);
  private readonly webhookPosts = this.registry.counter('smarthost_webhook_posts_total',
    'Webhook deliveries: posted (2xx), failed (will be retried), dropped (given up after 24 h)', ['result']);

  constructor(opts: SmarthostMetricsOptions) {
    const now = opts.now ?? Date.now;
    this.queue = opts.queue;
    this.registry.gauge('smarthost_build_info', 'The running smarthost version; always 1', ['version'])
      .set({ version: opts.version }, 1);
    this.registry.gauge('smarthost_queue_messages', 'Messages in the queue by state', ['state'], (g) => {
      for (const state of ['active', 'deferred', 'held'] as const) g.set({ state }, this.snapshot[state]);
    });
    this.registry.gauge('smarthost_queue_oldest_message_age_seconds',
      'Age of the oldest queued message; 0 when the queue is empty', [], (g) => {
        const oldest = this.snapshot.oldestArrivedMs;
        g.set({}, oldest === undefined ? 0 : Math.max(0, now() - oldest) / 1000);
      });
    if (opts.shared) this.sharedGauges(opts.shared, now);
    this.registry.gauge('smarthost_webhook_outbox_events', 'Webhook events waiting to be posted', [], (g) => g.set({}, opts.outbox?.() ?? 0));
  }

  private sharedGauges(shared: () => SharedQueueSnapshot, now: () => number): void {
    this.registry.gauge('smarthost_shared_queue_messages', 'Messages in the shared queue (all nodes) by the node holding their lease ("" none) and state', ['node', 'state'], (g) => {
      for (const r of shared().byNode) g.set({ node: r.node, state: r.state }, r.count);
    });
    this.registry.gauge('smarthost_shared_queue_oldest_message_age_seconds', 'Age of the oldest message in the shared queue, by the node holding its lease', ['node'], (g) => {
      const oldest = new Map<string, number>();
      for (const r of shared().byNode) oldest.set(r.node, Math.min(oldest.get(r.node) ?? Infinity, r.oldestMs));
      for (const [node, ms] of oldest) g.set({ node }, Math.max(0, now() - ms) / 1000);
    });
    // counters kept by the store; a gauge reads them at scrape time
    this.registry.gauge('smarthost_queue_lease_takeovers_total', 'Messages this node took over from an expired lease (its own after a restart too): each a possible duplicate delivery', [], (g) => g.set({}, shared().takeovers));
    this.registry.gauge('smarthost_queue_lease_lost_total', 'Attempts whose outcome was not saved because their lease had expired and another node took the message', [], (g) => g.set({}, shared().lost));
  }

  /** One answered API request; `route` is the route pattern (/api/v1/queue/:id), never the raw URL. */
  apiRequest(route: string, method: string, status: number): void {
    this.apiRequests.inc({ route, method, status: String(status) });
  }

  webhookPost(result: 'posted' | 'failed' | 'dropped'): void {
    this.webhookPosts.inc({ result });
  }

  /**
   * One recipient's result. `seconds` is Postfix's delay= (arrival -> now). Deferrals are
   * counted but not timed: only a final result ends a message's time in the queue.
   */
  delivery(route: string, status: DeliveryStatus, seconds: number): void {
    this.deliveries.inc({ route, status });
    if (status !== 'deferred') this.deliveryDuration.observe({}, seconds);
  }

  connectionOpened(listener: string): void {
    this.connections.inc({ listener });
    this.connectionsActive.inc({ listener });
  }

  connectionClosed(listener: string): void {
    this.connectionsActive.dec({ listener });
  }

  authFailed(): void {
    this.authFailures.inc();
  }

  /** A message acknowledged with 250: its size on disk and the time its commit took. */
  received(bytes: number, seconds: number): void {
    this.messagesReceived.inc();
    this.bytesReceived.inc({}, bytes);
    this.intakeDuration.observe({}, seconds);
  }

  mtaSts(e: StsEvent): void {
    if (e.kind === 'fetch') this.stsFetches.inc({ outcome: e.outcome });
    else if (e.kind === 'refused') this.stsRefused.inc({ why: e.why });
    else if (e.kind === 'testing') this.stsTesting.inc({ why: e.why });
  }

  /** The scrape page; a throwing queue snapshot propagates, and the server answers 500. */
  render(): string {
    this.snapshot = this.queue();
    return this.registry.render();
  }
}
