// The load generator against real servers: a smarthost daemon that ends sessions
// with 421 after [limits] messages_per_session, and two counting sinks standing for
// two relays behind a load balancer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../test/helpers/wait.js';
import { runLoad } from './load.js';
import { wireMessage } from './messages.js';
import { startServer } from './servers.js';
import { startSink } from './sink.js';

const message = wireMessage(1024);

test('a session smarthost ends with 421 at MAIL (messages_per_session) goes on in a new connection, counted; nothing lost', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  // startServer appends this TOML right after its [limits] keys: the first line is one of them
  const server = await startServer('smarthost', {}, { toml: `messages_per_session = 3\n[relay]\nurl = "smtp://127.0.0.1:${sink.port}"\ntls = "none"` });
  t.after(() => server.stop());
  const acked = new Set<number>();
  const r = await runLoad({ port: server.port, sessions: 2, message, idHeader: 'X-Bench-Id', warmupMs: 0, measureMs: 1000, onWindow: () => undefined, onAck: (id) => acked.add(id) });
  assert.ok(r.acknowledged > 6, `only ${r.acknowledged} messages: too few to need a new session`);
  // session i sends k_i messages over ceil(k_i / 3) connections
  assert.ok(r.reconnects >= Math.ceil(r.acknowledged / 3) - 2 && r.reconnects <= r.acknowledged / 3, `${r.reconnects} reconnects for ${r.acknowledged} messages`);
  assert.equal(acked.size, r.acknowledged);
  await waitFor(() => [...acked].every((id) => sink.arrivals.has(id)), () => `${acked.size} acknowledged at the sink (${sink.arrivals.size} there)`);
  assert.equal(sink.duplicates(), 0);
});

test('several ports: the sessions are spread over them evenly', async (t) => {
  const sinks = await Promise.all([startSink(), startSink()]);
  t.after(() => Promise.all(sinks.map((s) => s.stop())));
  const r = await runLoad({ port: sinks.map((s) => s.port), sessions: 4, message, idHeader: 'X-Bench-Id', warmupMs: 0, measureMs: 300, onWindow: () => undefined });
  assert.equal(r.reconnects, 0);
  await waitFor(() => sinks[0]!.arrivals.size + sinks[1]!.arrivals.size === r.acknowledged, () => `${r.acknowledged} at the sinks`);
  assert.deepEqual(sinks.map((s) => s.connections()), [2, 2]);
  assert.ok(sinks.every((s) => s.arrivals.size > 0));
});
