// The relay bench's PostgreSQL systems: smarthost with its queue in a fresh
// database of one private cluster per run (test/helpers/postgres.ts: fsync on,
// synchronous_commit on), as one daemon (smarthost-pg) or as two daemons on the
// same database (smarthost-pg2: different [queue] node_name, the same sink, the
// load spread over both ports). The system's CPU is the daemons' plus the
// PostgreSQL server's (the postmaster and every backend: its children), the
// latter also on its own.
import fs from 'node:fs';
import { postgresMissing, startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { startSmarthost, type RelaySystem, type SmarthostOptions, type Trouble } from './relay-systems.js';
import { treeCpuMs } from './servers.js';

export { postgresMissing };

interface Server { readonly cluster: PgCluster; readonly postmaster: number }

let server: Promise<Server> | undefined;
/** Set while the cluster runs: an error or ^C that ends the bench still stops it (see below). */
let running: Server | undefined;
let databases = 0;

// pg_ctl detaches the server from the bench, so servers.ts's exit handler does not see it; an
// exit handler must be synchronous: SIGQUIT is PostgreSQL's immediate shutdown.
process.on('exit', () => {
  if (!running) return;
  try { process.kill(running.postmaster, 'SIGQUIT'); } catch { /* gone */ }
  fs.rmSync(running.cluster.dir, { recursive: true, force: true });
});

/** The run's private cluster, started at first use. */
function pgServer(): Promise<Server> {
  server ??= startPostgres().then((cluster) => {
    running = { cluster, postmaster: cluster.pid() };
    return running;
  });
  return server;
}

/** Stops the cluster if one was started (idempotent). */
export async function stopPostgres(): Promise<void> {
  const s = running;
  server = undefined;
  running = undefined;
  await s?.cluster.stop();
}

function mergeTrouble(ts: Trouble[]): Trouble {
  const counts: Record<string, number> = {};
  for (const t of ts) for (const [k, n] of Object.entries(t.counts)) counts[k] = (counts[k] ?? 0) + n;
  return { counts, examples: ts.flatMap((t) => t.examples).slice(0, 8) };
}

/** `nodes` smarthost daemons (node names bench-1, bench-2) on one fresh database, relaying to the sink. */
export async function startSmarthostPg(sinkPort: number, nodes: 1 | 2, o: SmarthostOptions = {}): Promise<RelaySystem> {
  const { cluster, postmaster } = await pgServer();
  const db = `bench_${++databases}`;
  const url = await cluster.createDatabase(db);
  // Dropped after the cell, so that no autovacuum of an old cell's queue runs (and counts) in a later one.
  const drop = () => cluster.psql(`DROP DATABASE "${db}" WITH (FORCE)`).then(() => undefined);
  const daemons: RelaySystem[] = [];
  try {
    for (let i = 1; i <= nodes; i++) {
      const queue = `[queue]\nstore = "${url}"\nnode_name = "bench-${i}"\n`;
      daemons.push(await startSmarthost(sinkPort, { ...o, extraToml: `${o.extraToml ?? ''}\n${queue}` }));
    }
  } catch (e) {
    await Promise.all(daemons.map((d) => d.stop()));
    await drop();
    throw e;
  }
  const pgCpuMs = () => treeCpuMs(postmaster);
  return {
    name: nodes === 1 ? 'smarthost-pg' : 'smarthost-pg2',
    ports: daemons.flatMap((d) => d.ports),
    cpuMs: () => daemons.reduce((n, d) => n + d.cpuMs(), 0) + pgCpuMs(),
    storeCpuMs: pgCpuMs,
    queued: async () => Number(await cluster.psql('SELECT count(*) FROM smarthost_queue', db)),
    sent: () => daemons.flatMap((d) => d.sent()),
    trouble: () => mergeTrouble(daemons.map((d) => d.trouble())),
    stop: async () => {
      await Promise.all(daemons.map((d) => d.stop()));
      await drop();
    },
  };
}
