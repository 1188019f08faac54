// The relay bench's store verdict: medians over rounds, pg/files against 0.50, pg2/pg,
// and whether both nodes of pg2 delivered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SystemName } from './relay-systems.js';
import { storeVerdicts, type Cell } from './relay-report.js';

const grid = { sizes: [1024], sessions: [10], rounds: 3 };

function cell(system: SystemName, round: number, e2e: number, more: Partial<Cell> = {}): Cell {
  return {
    system, round, sizeBytes: 1024, sessions: 10, windowMessages: 0, acceptedPerSecond: e2e + 1, e2ePerSecond: e2e, strictPerSecond: e2e,
    p50Ms: 1, p99Ms: 2, maxMs: 3, intakeP99Ms: 1, cpuMsPerMsg: 2, windowCpuPct: 50, sinkCpuMsPerMsg: 0.1, otherCpuPct: 0,
    backlogAtStart: 0, backlogAtEnd: 0, drainSeconds: 0, acknowledged: 10, delivered: 10, lost: 0, duplicates: 0, otherAtSink: 0,
    queuedAfter: 0, connections: 1, reconnects: 0, sentPerNode: [10], trouble: { counts: {}, examples: [] },
    ...(system.startsWith('smarthost-pg') ? { daemonCpuMsPerMsg: 1.5, storeCpuMsPerMsg: 0.5 } : {}),
    ...more,
  };
}

test('medians over the rounds; pg/files >= 0.50 passes; pg2/pg; both nodes delivered in every round', () => {
  const cells = [1, 2, 3].flatMap((r) => [
    cell('smarthost', r, [1000, 900, 2000][r - 1]!),
    cell('smarthost-pg', r, [500, 400, 600][r - 1]!, { storeCpuMsPerMsg: r }),
    cell('smarthost-pg2', r, 800, { sentPerNode: [r, 2 * r] }),
  ]);
  const [v] = storeVerdicts(cells, grid);
  assert.equal(v!.files.e2e, 1000);
  assert.equal(v!.pg.e2e, 500);
  assert.equal(v!.pgRatio, 0.5);
  assert.equal(v!.pass, true);
  assert.equal(v!.pg2Ratio, 1.6);
  assert.equal(v!.pg.accepted, 501);
  assert.equal(v!.pg.storeCpuMsPerMsg, 2);
  assert.deepEqual(v!.pg2.sentPerNode, [6, 12]);
  assert.equal(v!.bothNodesSent, true);
});

test('a lost message or a ratio under 0.50 misses; a node that sent nothing in one round is shown', () => {
  const lost = storeVerdicts([cell('smarthost', 1, 1000), cell('smarthost-pg', 1, 900, { lost: 1 }), cell('smarthost-pg2', 1, 900, { sentPerNode: [10, 0] })], grid);
  assert.equal(lost[0]!.pass, false);
  assert.equal(lost[0]!.pg.lost, 1);
  assert.equal(lost[0]!.bothNodesSent, false);
  const slow = storeVerdicts([cell('smarthost', 1, 1000), cell('smarthost-pg', 1, 499)], grid);
  assert.equal(slow[0]!.pass, false);
  assert.equal(slow[0]!.bothNodesSent, undefined);
});

test('without the file store there is no verdict, only the figures; without pg systems no row', () => {
  const [v] = storeVerdicts([cell('smarthost-pg', 1, 300)], grid);
  assert.equal(v!.pass, undefined);
  assert.ok(Number.isNaN(v!.pgRatio));
  assert.deepEqual(storeVerdicts([cell('smarthost', 1, 1000), cell('postfix', 1, 400)], grid), []);
});
