// The callers of the cluster-wide limits, over loopback, on a private PostgreSQL cluster:
// two SmtpTransports (two nodes) sending to one real upstream keep a route's rate together,
// where two in-memory limiters send twice as much; a database that cannot be reached defers
// mail (4.3.0, nothing sent), defers quota-counted mail, and refuses AUTH with 454.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { RawSmtp } from '../../test/helpers/smtp-client.js';
import { startUpstream, type Upstream } from '../../test/peers/upstream.js';
import { hashPassword, UserStore } from '../auth/users-file.js';
import { parseConfig } from '../config/load.js';
import type { UpstreamConfig } from '../config/types.js';
import { allRecipients, type OutgoingMessage } from '../mail/delivery.js';
import { MailLog } from '../maillog/maillog.js';
import { QuotaGate } from '../qmgr/quota-gate.js';
import { resolverFor } from '../smtp/mx.js';
import { DeliveryThread } from '../smtp/delivery-thread.js';
import { SmtpTransport, type RemoteDestination } from '../smtp/transport.js';
import { ConnectionLimits } from '../smtpd/connection-limits.js';
import { createListener } from '../smtpd/listener.js';
import { waitFor } from '../../test/helpers/wait.js';
import { FsSpool } from './fs-spool.js';
import { PgLimits } from './pg-limits.js';
import { ensureSchema } from './pg-schema.js';

let cluster: PgCluster;
let upstream: Upstream;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
before(async () => { [cluster, upstream] = await Promise.all([startPostgres(), startUpstream()]); });
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await upstream?.close();
  await cluster?.stop();
});

let dbs = 0;
async function nodesOn(count: number): Promise<Array<{ limits: PgLimits; warnings: string[] }>> {
  const url = await cluster.createDatabase(`callers_${++dbs}`);
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
    await ensureSchema(pool);
    const warnings: string[] = [];
    const limits = new PgLimits(pool, { node: `node${i + 1}`, warn: (m) => warnings.push(m), pollMs: 20 });
    cleanups.push(() => { limits.close(); return pool.end(); });
    return { limits, warnings };
  }));
}

const route = (extra: Partial<UpstreamConfig>): Extract<RemoteDestination, { kind: 'upstream' }> => ({
  kind: 'upstream', key: 'route:m365', name: 'm365',
  upstream: { url: upstream.url, scheme: 'smtp', host: '127.0.0.1', port: upstream.port, tls: 'none', mechanisms: [], allowPlaintextAuth: false,
    minTlsVersion: 'TLSv1.2', concurrency: 4, timeoutMs: 5000, reuseMessages: 100, reuseTimeMs: 300_000, ...extra },
});
let ids = 0;
const message = (to: string): OutgoingMessage => {
  const id = `M${++ids}`;
  return { id, sender: 'app@example.com', recipients: [{ address: to }], size: 40, eightBit: false,
    body: () => Readable.from([Buffer.from(`Subject: ${id}\r\n\r\nhello ${id}\r\n`)]) };
};
function transport(shared?: PgLimits): SmtpTransport {
  const t = new SmtpTransport({ ehloName: 'node.test', resolver: resolverFor([]), deadMs: 1000,
    mx: { port: 25, tls: 'may', nameservers: [], concurrency: 2, minTlsVersion: 'TLSv1.2', timeoutMs: 5000, mtaSts: false },
    ...(shared ? { shared: shared.routes() } : {}) });
  cleanups.push(() => t.close());
  return t;
}


describe('callers of the cluster-wide limits', () => {
  it("two nodes keep a route's rate together; two in-memory limiters would send twice as much", async () => {
    const rate = { count: 2, windowMs: 400 };
    const send = async (a: SmtpTransport, b: SmtpTransport, tag: string) => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).deliver(route({ rate }), message(`${tag}${i}@x.test`))));
      assert.deepEqual(results.flat().map((r) => r.outcome), Array(8).fill('sent'));
    };
    const [n1, n2] = await nodesOn(2);
    const before = upstream.messages.length;
    await send(transport(n1!.limits), transport(n2!.limits), 'shared');
    assert.equal(upstream.messages.length - before, 8);
    const shared = busiestWindowOf(before, before + 8, rate.windowMs);
    assert.ok(shared <= rate.count, `${shared} messages within ${rate.windowMs} ms from two nodes sharing a rate of ${rate.count}`);
    await send(transport(), transport(), 'local');
    const local = busiestWindowOf(before + 8, before + 16, rate.windowMs);
    assert.ok(local > rate.count, `in-memory limiters, one per node, sent ${local} within one window: the reason for shared limits`);
  });

  it('a database that cannot be reached defers the mail of a limited route (4.3.0), sends none of it, and says so once', async () => {
    const [n1] = await nodesOn(1);
    const t = transport(n1!.limits);
    const before = upstream.messages.length;
    await cluster.halt();
    try {
      for (const dest of [route({ rate: { count: 5, windowMs: 60_000 } }), route({})]) {
        const [r] = await t.deliver(dest, message('down@x.test'));
        assert.equal(r!.outcome, 'deferred');
        assert.equal(r!.dsn.status, '4.3.0');
        assert.match(r!.dsn.reason, /^the cluster-wide limits of route m365 cannot be checked \(cannot reach the cluster limits database: .+\), so nothing was sent$/);
      }
    } finally {
      await cluster.resume();
    }
    assert.equal(upstream.messages.length, before, 'nothing reached the upstream');
    assert.equal(n1!.warnings.length, 1);
    const [r] = await t.deliver(route({}), message('back@x.test'));
    assert.equal(r!.outcome, 'sent');
    assert.deepEqual(n1!.warnings.slice(1), ['cluster limits: the database can be reached again']);
  });

  it('the delivery thread takes route limits from its own pool, defers while the database is away, and its warnings reach the main thread', async () => {
    const url = await cluster.createDatabase(`callers_${++dbs}`);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => undefined);
    cleanups.push(() => pool.end());
    await ensureSchema(pool);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-limits-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const spool = new FsSpool(dir);
    await spool.recover();
    cleanups.push(() => spool.close());
    const inc = await spool.receive({ sender: 'app@example.com', recipients: [{ address: 'w@x.test' }], client: { address: '127.0.0.1', hostname: 'localhost', helo: 'x', protocol: 'ESMTP' }, arrived: new Date().toISOString() });
    await inc.write(Buffer.from('Subject: from the worker\r\n\r\nhello\r\n'));
    const env = await inc.commit();
    const msg = { id: env.id, sender: env.sender, recipients: env.recipients, size: env.size, eightBit: false, body: () => spool.open(env.id) };
    const warnings: string[] = [];
    const queue = parseConfig('hostname = "node.test"\n', path.join(dir, 'x.toml')).config!.queue; // files under data_dir
    const t = new DeliveryThread({ dataDir: dir, queue, ehloName: 'node.test', deadMs: 1000, rules: { map: {}, hostname: 'node.test' }, dkim: [],
      mx: { port: 25, tls: 'may', nameservers: [], concurrency: 2, minTlsVersion: 'TLSv1.2', timeoutMs: 5000, mtaSts: false },
      limits: { db: { connectionString: url }, node: 'worker-node' } }, undefined, (w) => warnings.push(w));
    cleanups.push(() => t.close());
    const dest = route({ rate: { count: 5, windowMs: 60_000 } });
    assert.equal((await t.deliver(dest, msg))[0]!.outcome, 'sent');
    assert.deepEqual((await pool.query(`SELECT node FROM limit_holds WHERE key = 'rate:route:m365'`)).rows, [{ node: 'worker-node' }], 'the sent message counts for the window');
    await cluster.halt();
    try {
      const [r] = await t.deliver(dest, msg);
      assert.equal(r!.dsn.status, '4.3.0');
      await waitFor(() => warnings.length === 1, 'the warning from the worker');
      assert.match(warnings[0]!, /^cluster limits: the database cannot be reached/);
    } finally {
      await cluster.resume();
    }
    assert.equal((await t.deliver(dest, msg))[0]!.outcome, 'sent');
    await waitFor(() => warnings.length === 2, 'the all-clear from the worker');
  });

  it('route quotas: two nodes count into one quota, and a database that cannot be reached defers with the reason', async () => {
    const [n1, n2] = await nodesOn(2);
    const gates = [new QuotaGate(n1!.limits.quotas()), new QuotaGate(n2!.limits.quotas())];
    const dest = route({ quota: { count: 3, windowMs: 86_400_000 } });
    const sent = async (m: OutgoingMessage) => allRecipients(m.recipients.map((r) => r.address), 'sent', { status: '2.0.0', reason: '250 ok' }, 'up', 0);
    const results = (await Promise.all([0, 1, 2, 3, 4].map((i) => gates[i % 2]!.deliver(dest, message(`q${i}@x.test`), sent)))).flat();
    assert.equal(results.filter((r) => r.outcome === 'sent').length, 3);
    for (const r of results.filter((x) => x.outcome === 'deferred')) assert.match(r.dsn.reason, /^daily quota of 3 recipients for route m365 used up; resets /);
    await cluster.halt();
    try {
      const [r] = await gates[0]!.deliver(dest, message('q9@x.test'), () => assert.fail('nothing may be sent'));
      assert.equal(r!.dsn.status, '4.3.0');
      assert.match(r!.dsn.reason, /^cannot record the quota count in the cluster limits database \(cannot reach the cluster limits database: .+\), so nothing was sent$/);
    } finally {
      await cluster.resume();
    }
  });

  it('AUTH on a node whose failure counts cannot be reached gets 454 4.7.0, and a counted failure on one node blocks the client on another', async () => {
    const [n1, n2] = await nodesOn(2);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-limits-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'users'), `alice:${await hashPassword('right')}\n`);
    const toml = `hostname = "relay.test"\ndata_dir = "${dir}"\n[[listen]]\naddress = "127.0.0.1:0"\nauth = "optional"\nallow_plaintext_auth = true\ntrusted_networks = []\n[auth]\nusers_file = "${dir}/users"\n[limits]\nauth_failures = "2/10m"\nauth_failures_per_account = "0"\n`;
    const { config, problems } = parseConfig(toml, path.join(dir, 'smarthost.toml'));
    assert.deepEqual(problems, []);
    const log = new MailLog({ format: 'postfix', hostname: 'relay.test', sink: { write: () => undefined } });
    const ports = await Promise.all([n1!, n2!].map(async (n) => {
      const server = createListener(config!.listen[0]!, {
        hostname: 'relay.test', limits: config!.limits, localDomains: [], spool: new FsSpool(dir), log, users: new UserStore(`${dir}/users`),
        throttle: n.limits.authFailures(config!.limits.authFailures), connections: new ConnectionLimits(100, 100), minTlsVersion: 'TLSv1.2',
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      return (server.server.address() as import('node:net').AddressInfo).port;
    }));
    const auth = async (port: number, password: string) => {
      const c = await RawSmtp.connect(port);
      await c.read();
      await c.cmd('EHLO c.test');
      const r = await c.cmd(`AUTH PLAIN ${Buffer.from(`\0alice\0${password}`).toString('base64')}`);
      c.close();
      return r.text;
    };
    assert.match(await auth(ports[0]!, 'wrong'), /^535 /);
    assert.match(await auth(ports[1]!, 'wrong'), /^535 /);
    assert.match(await auth(ports[0]!, 'right'), /^421 4\.7\.0 Error: too many failed authentication attempts/, 'two failures on two nodes block the client on the first');
    await cluster.halt();
    try {
      assert.equal(await auth(ports[1]!, 'right'), '454 4.7.0 Temporary authentication failure');
    } finally {
      await cluster.resume();
    }
    assert.match(await auth(ports[1]!, 'right'), /^421 4\.7\.0 /, 'the counts are back, and still count');
    assert.equal(n2!.warnings.length, 2, n2!.warnings.join('\n'));
  });
});

/** The most of these messages the upstream received within any `windowMs` (by its clock, the machine's, as the database's). */
function busiestWindowOf(from: number, to: number, windowMs: number): number {
  const times = upstream.messages.slice(from, to).map((m) => m.receivedAt).sort((a, b) => a - b);
  return Math.max(0, ...times.map((t, i) => times.filter((u, j) => j >= i && u < t + windowMs).length));
}
