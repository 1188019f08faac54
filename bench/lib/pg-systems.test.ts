// smarthost-pg2 as the relay bench runs it: two daemons on one fresh database of the
// bench's private cluster, load spread over both ports, each delivering to the sink.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { waitFor } from '../../test/helpers/wait.js';
import { runLoad } from './load.js';
import { wireMessage } from './messages.js';
import { startSmarthostPg, stopPostgres } from './pg-systems.js';
import { startSink } from './sink.js';

after(() => stopPostgres());

test('smarthost-pg2: both daemons take mail and deliver it, nothing left in the database, PostgreSQL CPU counted apart', async (t) => {
  const sink = await startSink();
  t.after(() => sink.stop());
  const sut = await startSmarthostPg(sink.port, 2);
  t.after(() => sut.stop());
  assert.equal(sut.name, 'smarthost-pg2');
  assert.equal(sut.ports.length, 2);
  const pgBefore = sut.storeCpuMs!();
  const acked = new Set<number>();
  const r = await runLoad({ port: sut.ports, sessions: 4, message: wireMessage(1024), idHeader: 'X-Bench-Id', warmupMs: 0, measureMs: 1000,
    onWindow: () => undefined, onAck: (id) => acked.add(id) });
  assert.equal(acked.size, r.acknowledged);
  await waitFor(() => [...acked].every((id) => sink.arrivals.has(id)), () => `${acked.size} acknowledged at the sink (${sink.arrivals.size} there)`);
  await waitFor(() => sut.sent().reduce((a, b) => a + b, 0) === acked.size, () => `status=sent per node ${sut.sent().join('/')} for ${acked.size}`);
  assert.ok(sut.sent().every((n) => n > 0), `sent per node ${sut.sent().join('/')}`);
  await waitFor(async () => (await sut.queued()) === 0, 'an empty queue in the database');
  assert.ok(sut.storeCpuMs!() > pgBefore, 'the PostgreSQL server used CPU');
  assert.ok(sut.cpuMs() > sut.storeCpuMs!(), 'the daemons count too');
});
