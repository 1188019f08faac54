// The scrape listener serves SmarthostMetrics on 127.0.0.1:0; each body is read
// back with an independent parser (parse-prometheus-text-format), so a format
// slip our own exact-text tests share with the renderer still shows up here.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheus from 'parse-prometheus-text-format';
import { listenMetrics, type MetricsListener } from './metrics-server.js';
import { SmarthostMetrics, type QueueSnapshot } from './smarthost-metrics.js';

const LOCAL = { address: '127.0.0.1:0', host: '127.0.0.1', port: 0 };
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'; // literal: the renderer's constant could drift
const NOW = 1_700_000_000_000;

type Family = ReturnType<typeof parsePrometheus>[number];

function family(families: readonly Family[], name: string): Family {
  const f = families.filter((x) => x.name === name);
  assert.equal(f.length, 1, `one family ${name} in ${families.map((x) => x.name).join(', ')}`);
  return f[0]!;
}

/** name{labels} -> value, for the plain samples of a family. */
function values(f: Family): Record<string, string> {
  return Object.fromEntries(f.metrics.map((m) => [JSON.stringify(m.labels ?? {}), m.value!]));
}

describe('listenMetrics with SmarthostMetrics', () => {
  let queue: QueueSnapshot = { active: 3, deferred: 2, held: 1, oldestArrivedMs: NOW - 90_000 };
  const metrics = new SmarthostMetrics({ version: '0.1.0', queue: () => queue, now: () => NOW });
  let l: MetricsListener;
  let base: string;

  before(async () => {
    l = await listenMetrics(LOCAL, () => metrics.render());
    base = `http://127.0.0.1:${l.port}`;
  });
  after(() => l.close());

  async function scrape(): Promise<readonly Family[]> {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), CONTENT_TYPE);
    const body = await res.text();
    assert.ok(body.endsWith('\n'), 'the last line ends with a newline');
    return parsePrometheus(body);
  }

  it('binds the real port and reports the host', () => {
    assert.equal(l.address, '127.0.0.1');
    assert.ok(l.port > 0);
  });

  it('serves every family, typed, from a fresh start', async () => {
    const families = await scrape();
    assert.deepEqual(Object.fromEntries(families.map((f) => [f.name, f.type])), {
      smarthost_build_info: 'GAUGE',
      smarthost_queue_messages: 'GAUGE',
      smarthost_queue_oldest_message_age_seconds: 'GAUGE',
      smarthost_deliveries_total: 'COUNTER',
      smarthost_delivery_duration_seconds: 'HISTOGRAM',
      smarthost_connections_total: 'COUNTER',
      smarthost_connections_active: 'GAUGE',
      smarthost_auth_failures_total: 'COUNTER',
      smarthost_messages_received_total: 'COUNTER',
      smarthost_received_bytes_total: 'COUNTER',
      smarthost_mta_sts_policy_fetches_total: 'COUNTER',
      smarthost_mta_sts_enforce_refused_total: 'COUNTER',
      smarthost_mta_sts_testing_failures_total: 'COUNTER',
      smarthost_intake_duration_seconds: 'HISTOGRAM',
      smarthost_api_requests_total: 'COUNTER',
      smarthost_webhook_posts_total: 'COUNTER',
      smarthost_webhook_outbox_events: 'GAUGE',
    });
    for (const f of families) assert.ok(f.help.length > 0, `${f.name} has help`);
    assert.deepEqual(values(family(families, 'smarthost_build_info')), { '{"version":"0.1.0"}': '1' });
    assert.deepEqual(values(family(families, 'smarthost_auth_failures_total')), { '{}': '0' });
  });

  it('reads the queue snapshot at each scrape', async () => {
    let families = await scrape();
    assert.deepEqual(values(family(families, 'smarthost_queue_messages')), {
      '{"state":"active"}': '3', '{"state":"deferred"}': '2', '{"state":"held"}': '1',
    });
    assert.deepEqual(values(family(families, 'smarthost_queue_oldest_message_age_seconds')), { '{}': '90' });
    queue = { active: 0, deferred: 0, held: 0 };
    families = await scrape();
    assert.equal(values(family(families, 'smarthost_queue_messages'))['{"state":"active"}'], '0');
    assert.deepEqual(values(family(families, 'smarthost_queue_oldest_message_age_seconds')), { '{}': '0' });
  });

  it('counts deliveries, connections, auth failures and intake', async () => {
    metrics.delivery('relay', 'sent', 0.3);
    metrics.delivery('relay', 'sent', 7200);
    metrics.delivery('mx', 'deferred', 60);
    metrics.delivery('mx', 'bounced', 200_000);
    metrics.connectionOpened('127.0.0.1:2525');
    metrics.connectionOpened('127.0.0.1:2525');
    metrics.connectionOpened('[::1]:587');
    metrics.connectionClosed('127.0.0.1:2525');
    metrics.authFailed();
    metrics.received(1000, 0.004);
    metrics.received(2500, 2);
    const families = await scrape();

    assert.deepEqual(values(family(families, 'smarthost_deliveries_total')), {
      '{"route":"relay","status":"sent"}': '2',
      '{"route":"mx","status":"deferred"}': '1',
      '{"route":"mx","status":"bounced"}': '1',
    });
    const delivery = family(families, 'smarthost_delivery_duration_seconds').metrics[0]!;
    assert.equal(delivery.count, '3', 'a deferral is not timed');
    assert.equal(delivery.sum, String(0.3 + 7200 + 200_000));
    assert.deepEqual([delivery.buckets!['0.5'], delivery.buckets!['3600'], delivery.buckets!['14400'], delivery.buckets!['86400'], delivery.buckets!['+Inf']],
      ['1', '1', '2', '2', '3']);

    assert.deepEqual(values(family(families, 'smarthost_connections_total')), {
      '{"listener":"127.0.0.1:2525"}': '2', '{"listener":"[::1]:587"}': '1',
    });
    assert.deepEqual(values(family(families, 'smarthost_connections_active')), {
      '{"listener":"127.0.0.1:2525"}': '1', '{"listener":"[::1]:587"}': '1',
    });
    assert.deepEqual(values(family(families, 'smarthost_auth_failures_total')), { '{}': '1' });
    assert.deepEqual(values(family(families, 'smarthost_messages_received_total')), { '{}': '2' });
    assert.deepEqual(values(family(families, 'smarthost_received_bytes_total')), { '{}': '3500' });
    const intake = family(families, 'smarthost_intake_duration_seconds').metrics[0]!;
    assert.deepEqual([intake.count, intake.buckets!['0.001'], intake.buckets!['0.005'], intake.buckets!['1'], intake.buckets!['+Inf']],
      ['2', '0', '1', '1', '2']);
  });

  it('answers HEAD with headers only', async () => {
    const res = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), CONTENT_TYPE);
    assert.ok(Number(res.headers.get('content-length')) > 0);
    assert.equal(await res.text(), '');
  });

  it('answers 404 on other paths and 405 on other methods', async () => {
    for (const p of ['/', '/metrics/', '/metricsx', '/favicon.ico']) {
      const res = await fetch(`${base}${p}`);
      assert.equal(res.status, 404, p);
      await res.text();
    }
    const res = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    await res.text();
    const q = await fetch(`${base}/metrics?name[]=x`);
    assert.equal(q.status, 200, 'a query string is ignored');
    await q.text();
  });
});

describe('listenMetrics: failures stay inside', () => {
  it('answers 500 when rendering throws, and keeps serving', async () => {
    const errors: Error[] = [];
    let fail = true;
    const l = await listenMetrics(LOCAL, () => {
      if (fail) throw new Error('queue gone');
      return '# HELP up Up\n# TYPE up gauge\nup 1\n';
    }, { onError: (e) => errors.push(e) });
    try {
      const res = await fetch(`http://127.0.0.1:${l.port}/metrics`);
      assert.equal(res.status, 500);
      await res.text();
      assert.deepEqual(errors.map((e) => e.message), ['queue gone']);
      fail = false;
      const ok = await fetch(`http://127.0.0.1:${l.port}/metrics`);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), '# HELP up Up\n# TYPE up gauge\nup 1\n');
    } finally {
      await l.close();
    }
  });

  it('rejects when the port is taken, so start can refuse loudly', async () => {
    const first = await listenMetrics(LOCAL, () => '');
    try {
      await assert.rejects(listenMetrics({ ...LOCAL, port: first.port }, () => ''), { code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });

  it('closes with a keep-alive scraper still connected', async () => {
    const l = await listenMetrics(LOCAL, () => 'up 1\n');
    const res = await fetch(`http://127.0.0.1:${l.port}/metrics`); // undici keeps the socket open
    await res.text();
    await l.close();
    assert.equal(l.server.listening, false);
  });
});
