// The PostgreSQL queue store end to end (issue 17): daemons on one store in a private cluster
// (test/helpers/postgres.ts), relaying to test upstreams. 250 only after COMMIT; mail accepted by
// one node delivered once; a node killed while it holds leases has its mail delivered by another
// once the lease expires; a node killed with -9 under load loses nothing acknowledged; the
// database halted under load answers 451 4.3.0 and, back, everything acknowledged is delivered.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launch, removeDir, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

let cluster: PgCluster;
let dbs = 0;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
before(async () => { cluster = await startPostgres(); });
after(async () => {
  try {
    for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => undefined); // one failing cleanup must not keep the cluster running
  } finally { await cluster?.stop(); }
});

async function database(): Promise<string> { return cluster.createDatabase(`e2e_${++dbs}`); }

function queueToml(url: string, node: string, extra = ''): string {
  return `[queue]\nstore = "${url}"\nnode_name = "${node}"\nlease = "3s"\nretry_min = "1s"\nretry_max = "2s"\n${extra}`;
}

async function daemon(url: string, node: string, up: Upstream, extra = '', relayExtra = ''): Promise<RunningDaemon> {
  const d = await startDaemon({
    toml: `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n${relayExtra}[limits]\nconnections_per_ip = 100\n${queueToml(url, node, extra)}`,
  });
  cleanups.push(async () => { await d.stop().catch(() => undefined); removeDir(d.dir); });
  d.child.stderr!.on('data', (b: Buffer) => { stderrOf.set(d, (stderrOf.get(d) ?? '') + b.toString()); });
  return d;
}

async function upstream(): Promise<Upstream> {
  const up = await startUpstream();
  cleanups.push(() => up.close());
  return up;
}

/** What a daemon wrote on stderr (a crash), for failure messages. */
const stderrOf = new Map<RunningDaemon, string>();
const tokenOf = (data: Buffer) => /Subject: (\S+)/.exec(data.toString('latin1'))?.[1] ?? '?';
/** The tokens (Subject) an upstream got so far. */
const tokensAt = (up: Upstream) => new Set(up.messages.map((m) => tokenOf(m.data)));
/** The tokens of acknowledged messages not among `delivered`. */
const undelivered = (acked: Map<string, string>, delivered: Set<string> | Map<string, number>) => [...acked.values()].filter((t) => !delivered.has(t));

/** One node on a fresh database, relaying to a fresh upstream, with `sessions` clients sending until end(). */
async function underLoad(node: string, sessions: number) {
  const up = await upstream();
  const d = await daemon(await database(), node, up);
  let stop = false;
  const { acked, replies, running } = load(d.ports[0]!, sessions, () => stop);
  return { up, d, acked, replies, end: () => { stop = true; return running; } };
}

/**
 * Sessions sending one message after another until stopped; every 250 is kept in `acked` (queue
 * id -> token), every reply in `replies`. A session the daemon ends (too many errors while the
 * database is away) connects again; one that cannot connect (the daemon was killed) ends.
 */
function load(port: number, sessions: number, stop: () => boolean): { acked: Map<string, string>; replies: string[]; running: Promise<void> } {
  const acked = new Map<string, string>();
  const replies: string[] = [];
  const running = Promise.all(Array.from({ length: sessions }, async (_, s) => {
    for (let n = 0; !stop();) {
      let c: RawSmtp;
      try { c = await RawSmtp.connect(port); await c.read(); await c.cmd('EHLO load.test'); } catch { return; }
      for (; !stop(); n++) {
        const token = `s${s}-m${n}`;
        try {
          const r = await sendRaw(c, `load${s}@example.com`, ['sink@example.net'], `Subject: ${token}\r\n\r\n${'text '.repeat(50)}\r\n.\r\n`);
          replies.push(r.text);
          const m = /^250 2\.0\.0 Ok: queued as (\w+)$/.exec(r.text);
          if (m) acked.set(m[1]!, token);
          else if ((await c.cmd('RSET')).code !== 250) break;
        } catch { break; } // the session ended under us
      }
      c.close();
    }
  })).then(() => undefined);
  return { acked, replies, running };
}

describe('PostgreSQL queue store', () => {
  it('accepts and delivers through [relay], with the password from password_file, and the queue verbs read the database', async () => {
    const db = `e2e_${++dbs}`;
    await cluster.createDatabase(db);
    const roleUrl = await cluster.createRole('relay', 'relay-secret', db, 'GRANT ALL ON SCHEMA public TO relay');
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'db.secret'), 'relay-secret\n', { mode: 0o600 });
    const up = await upstream();
    up.setFaults([{ stage: 'rcpt', action: 'reply', reply: '451 4.2.0 later', times: 1 }]);
    const d = await daemon(roleUrl.replace(':relay-secret@', '@'), 'relay-a', up, `password_file = "${path.join(dir, 'db.secret')}"\n`);
    cleanups.push(() => removeDir(dir));
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(d.ports[0]!, 'a@example.com', ['b@example.net'], { body: `Subject: pg-${i}\r\n\r\nhello\r\n` }));
    const got = await up.waitForMessages(5, 20_000);
    assert.deepEqual(got.map((m) => tokenOf(m.data)).sort(), ['pg-0', 'pg-1', 'pg-2', 'pg-3', 'pg-4']);
    await d.waitForLog(new RegExp(`${ids[4]}: removed`));
    await waitFor(() => JSON.parse(d.cli(['queue', '--json']).stdout).length === 0, () => `empty queue: ${d.cli(['queue']).stdout}`, 100, 50);
    assert.match(d.logs(), /status=deferred/, 'the one 451 was retried');
    const check = d.cli(['check']);
    assert.match(check.stdout + check.stderr, /queue database: schema version 3, this role can write/);
  });

  it('local recipients on a shared store go into the Maildir of the node that delivers the message', async () => {
    const url = await database();
    const up = await upstream();
    const d = await daemon(url, 'node-l', up, '[local]\ndomains = ["relay.test"]\nusers = ["alice"]\n');
    await submit(d.ports[0]!, 'x@example.com', ['alice@relay.test'], { body: 'Subject: local-1\r\n\r\nhi\r\n' });
    const dir = path.join(d.dataDir, 'mail', 'alice', 'new');
    await waitFor(() => fs.existsSync(dir) && fs.readdirSync(dir).length === 1, () => `a message in ${dir}\n${d.logs().slice(-1500)}`, 200, 50);
    assert.match(fs.readFileSync(path.join(dir, fs.readdirSync(dir)[0]!), 'utf8'), /Subject: local-1/);
    await waitFor(() => JSON.parse(d.cli(['queue', '--json']).stdout).length === 0, 'an empty queue', 100, 50);
  });

  it('two nodes on one store: each message delivered once; a node killed while it holds leases has its mail delivered by the other after the lease', async () => {
    const url = await database();
    const stalled = await upstream();
    const good = await upstream();
    stalled.setFaults([{ stage: 'data', action: 'stall' }]);
    const a = await daemon(url, 'node-a', stalled);
    const b = await daemon(url, 'node-b', good, '[metrics]\naddress = "127.0.0.1:0"\n');
    // B delivers its own mail once
    for (let i = 0; i < 10; i++) await submit(b.ports[0]!, 'x@example.com', ['y@example.net'], { body: `Subject: b-${i}\r\n\r\nhi\r\n` });
    await good.waitForMessages(10, 20_000);
    // A takes mail and stalls in DATA with it, leases held
    const fromA = [];
    for (let i = 0; i < 10; i++) fromA.push(await submit(a.ports[0]!, 'x@example.com', ['y@example.net'], { body: `Subject: a-${i}\r\n\r\nhi\r\n` }));
    await waitFor(() => stalled.sessions.length >= 1, 'node A reaching the stalled upstream', 200, 50);
    const listed = b.cli(['queue', 'show', fromA[0]!]).stdout;
    assert.match(listed, /lease: {4}node node-a, until /, 'the queue shows which node holds the lease');
    assert.equal(good.messages.length, 10, 'B leaves alone what A holds');
    await a.kill9();
    const all = await good.waitForMessages(20, 30_000);
    const tokens = all.map((m) => tokenOf(m.data));
    assert.equal(new Set(tokens).size, tokens.length, `no duplicates: ${tokens.join(' ')}`);
    assert.deepEqual(tokens.filter((t) => t.startsWith('a-')).sort(), Array.from({ length: 10 }, (_, i) => `a-${i}`).sort());
    await waitFor(() => JSON.parse(b.cli(['queue', '--json']).stdout).length === 0, 'an empty queue', 100, 50);
    // B counted each message it took over from A's expired leases: the possible duplicates
    const metricsUrl = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(await b.waitForLog(/metrics on http:\S+/))![1]!;
    const page = await (await fetch(metricsUrl)).text();
    assert.match(page, /^smarthost_queue_lease_takeovers_total 10$/m, page);
    assert.match(page, /^smarthost_queue_lease_lost_total 0$/m);
    assert.match(b.logs(), /taking over delivery: another node's lease expired/);
  });

  it('three nodes take 1,000 messages; one is killed with kill -9 holding leases on a stalled upstream: the others deliver every acknowledged message', async (t) => {
    const url = await database();
    const stalled = await upstream();
    const good = await upstream();
    stalled.setFaults([{ stage: 'data', action: 'stall' }]);
    const nodes = [await daemon(url, 'three-a', stalled), await daemon(url, 'three-b', good), await daemon(url, 'three-c', good)];
    // ten clients, one message per connection (cron, PHP), round robin over the three relays
    const acked = new Map<string, string>(); // token -> queue id, for every 250
    let next = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = next++; i < 1000; i = next++) {
        const token = `three-${i}`;
        acked.set(token, await submit(nodes[i % 3]!.ports[0]!, 'x@example.com', ['y@example.net'], { body: `Subject: ${token}\r\n\r\nhi\r\n` }));
      }
    }));
    assert.equal(acked.size, 1000);
    await waitFor(() => stalled.sessions.length >= 1, 'node A holding mail in DATA at the stalled upstream', 200, 50);
    const killedAt = Date.now();
    await nodes[0]!.kill9();
    const tokens = () => tokensAt(good);
    await waitFor(() => tokens().size >= acked.size, () => `all 1,000 delivered (${tokens().size} so far)\n${nodes[1]!.logs().slice(-2000)}`, 600, 100);
    const seconds = (Date.now() - killedAt) / 1000;
    const missing = [...acked.keys()].filter((k) => !tokens().has(k));
    assert.deepEqual(missing, [], 'every acknowledged message delivered');
    const duplicates = good.messages.length - tokens().size;
    const takeovers = nodes.slice(1).reduce((n, d) => n + (d.logs().match(/taking over delivery/g) ?? []).length, 0);
    t.diagnostic(`1,000 acknowledged on 3 nodes; node A killed holding leases; all delivered by B and C ${seconds.toFixed(1)} s after the kill (lease 3 s + retry_min 1 s); ` +
      `${takeovers} takeover(s) logged, ${duplicates} duplicate(s) at the upstream, ${stalled.messages.length} reached the stalled one`);
    assert.ok(duplicates <= takeovers, `a duplicate only where a lease was taken over (${duplicates} > ${takeovers})`);
  });

  it('two nodes count into one [relay] quota: together they send no more than it, and each defers the rest with the reason', async () => {
    const url = await database();
    const up = await upstream();
    const nodes = [await daemon(url, 'quota-a', up, '', 'quota = "4/1h"\n'), await daemon(url, 'quota-b', up, '', 'quota = "4/1h"\n')];
    const ids: string[][] = [[], []];
    for (let i = 0; i < 4; i++) {
      for (const [n, d] of nodes.entries()) ids[n]!.push(await submit(d.ports[0]!, 'x@example.com', [`q${n}-${i}@example.net`], { body: `Subject: q${n}-${i}\r\n\r\nhi\r\n` }));
    }
    // every message is either sent or deferred for the quota; then the upstream's count is final for this window
    const settled = (n: number) => ids[n]!.every((id) => new RegExp(`${id}: to=<[^>]+>, .*status=(sent|deferred \\(.*quota of 4 recipients per 1h for \\[relay\\] used up)`).test(nodes.map((d) => d.logs()).join("")));
    await waitFor(() => settled(0) && settled(1), () => `every message sent or deferred for the quota\n${nodes.map((d) => d.logs().slice(-2000)).join('\n')}`, 200, 50);
    assert.equal(up.messages.length, 4, `two nodes sharing a quota of 4 sent ${up.messages.length}`);
    const deferred = nodes.map((d) => (d.logs().match(/status=deferred \([^)]*quota of 4 recipients per 1h for \[relay\] used up/g) ?? []).length);
    assert.ok(deferred[0]! + deferred[1]! >= 4, `the other four deferred with the reason: ${deferred.join(' + ')}`);
    const check = nodes[0]!.cli(['check']);
    assert.match(check.stdout, /quota \[relay\]: 4 of 4 recipients used in the last 1h/, 'check reads the shared count');
  });

  it('kill -9 of a node under load: every acknowledged message is delivered after restart', async () => {
    const { up, d, acked, end } = await underLoad('node-k', 16);
    await waitFor(() => acked.size >= 200, 'acknowledged messages', 400, 50);
    await d.kill9();
    await end();
    const again = await launch(d.dir, d.configFile);
    cleanups.push(() => again.stop().catch(() => undefined));
    const missingNow = () => undelivered(acked, tokensAt(up));
    await waitFor(() => missingNow().length === 0, () => `every acknowledged message delivered; missing ${missingNow().length}: ${missingNow().slice(0, 5).join(' ')}\n${again.logs().slice(-2000)}`, 600, 100);
    const delivered = new Map<string, number>();
    for (const m of up.messages) delivered.set(tokenOf(m.data), (delivered.get(tokenOf(m.data)) ?? 0) + 1);
    const missing = undelivered(acked, delivered);
    assert.deepEqual(missing, [], 'acknowledged but never delivered');
    const dup = [...delivered.values()].filter((n) => n > 1).length;
    console.log(`kill -9 on the PostgreSQL store: ${acked.size} acknowledged, all delivered, ${dup} delivered twice (in flight at the kill)`);
  });

  it('the database halted under load: 451 4.3.0 while it is down, never 250; back up, everything acknowledged is delivered', async () => {
    const { up, d, acked, replies, end } = await underLoad('node-h', 8);
    await waitFor(() => acked.size >= 50, 'acknowledged messages before the halt', 400, 50);
    const before = replies.length;
    await cluster.halt();
    await waitFor(() => replies.slice(before).some((r) => r.startsWith('451 4.3.0 Error: queue file write error')), () => `a 451 while the database is down: ${replies.slice(before, before + 5).join(' | ')} (daemon exit ${d.child.exitCode} ${d.child.signalCode}: ${stderrOf.get(d) ?? ''})\n${d.logs().slice(-1500)}`, 400, 50);
    const during = acked.size;
    await cluster.resume();
    await waitFor(() => acked.size > during + 20, 'new 250s once the database is back', 600, 50);
    await end();
    await waitFor(() => tokensAt(up).size >= acked.size, () => `all ${acked.size} delivered (${up.messages.length} so far)\n${d.logs().split('\n').filter((l) => !/queue write error|too many errors|client=|queue active|disconnect|connect from/.test(l)).slice(-40).join('\n')}\n${d.cli(['queue']).stdout.slice(0, 3000)}`, 600, 100);
    const delivered = tokensAt(up);
    assert.deepEqual(undelivered(acked, delivered), []);
    assert.ok(!replies.some((r) => r.startsWith('452')), 'no 452: the database being away is not a full disk');
    console.log(`database halted under load: ${acked.size} acknowledged, all delivered; ${replies.filter((r) => r.startsWith('451')).length} answered 451 4.3.0 meanwhile`);
  });
});
