// npm run fuzz -- [--target data|config|dialog] [--runs N] [--seconds S] [--seed N [--path P]] [--exact-addresses]
// Long fuzz runs outside CI: each target runs batches with fresh seeds until it
// has seen --runs inputs (default: data 1,000,000, config 50,000, dialog 2,000)
// or --seconds have passed; --seed with --path replays one failure.
// Prints the counts per target, and for a failure its seed and the replay command.
import { makeTargets, runBatch, type Target } from './targets.js';

interface Args { targets: string[]; runs?: number; seconds?: number; seed?: number; path?: string; exactAddresses: boolean }

const DEFAULT_RUNS: Record<string, number> = { data: 1_000_000, config: 50_000, dialog: 2_000 };

function parseArgs(argv: string[]): Args {
  const a: Args = { targets: [], exactAddresses: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${k} needs a value`); return x; };
    if (k === '--target') a.targets.push(...v().split(','));
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--seconds') a.seconds = Number(v());
    else if (k === '--seed') a.seed = Number(v());
    else if (k === '--path') a.path = v();
    else if (k === '--exact-addresses') a.exactAddresses = true;
    else throw new Error(`unknown option ${k}; usage: npm run fuzz -- [--target data|config|dialog] [--runs N] [--seconds S] [--seed N [--path P]] [--exact-addresses]`);
  }
  return a;
}

async function fuzzTarget(t: Target, args: Args): Promise<{ runs: number; failures: number }> {
  const budget = args.runs ?? DEFAULT_RUNS[t.name]!;
  const deadline = args.seconds !== undefined ? Date.now() + args.seconds * 1000 : Infinity;
  let runs = 0;
  let failures = 0;
  let seed = args.seed ?? (Date.now() ^ (Math.random() * 2 ** 31)) | 0;
  const started = Date.now();
  while (runs < budget && Date.now() < deadline) {
    const n = args.path !== undefined ? 1 : Math.min(t.batch, budget - runs);
    const r = await runBatch(t, n, seed, args.path);
    runs += r.runs;
    if (r.failure) { failures++; console.log(r.failure); }
    if (args.path !== undefined || (args.seed !== undefined && r.failure)) break;
    seed = (seed + 0x9e3779b9) | 0;
    if (Date.now() - started > 10_000) process.stdout.write(`  ${t.name}: ${runs} inputs, ${failures} failure(s)\r`);
  }
  const secs = (Date.now() - started) / 1000;
  console.log(`${t.name}: ${runs} inputs in ${secs.toFixed(0)} s, ${failures} failure(s)${t.summary() ? `; ${t.summary()}` : ''}`);
  return { runs, failures };
}

function usage(message: string): never {
  console.error(`npm run fuzz: ${message}`);
  process.exit(64);
}

let args: Args;
try { args = parseArgs(process.argv.slice(2)); } catch (e) { usage((e as Error).message); }
const all = makeTargets({ exactAddresses: args.exactAddresses });
const chosen = args.targets.length ? args.targets.map((n) => all.find((t) => t.name === n) ?? usage(`no target ${n}; targets: ${all.map((t) => t.name).join(', ')}`)) : all;
let total = 0;
let failed = 0;
for (const t of chosen) {
  try {
    const r = await fuzzTarget(t, args);
    total += r.runs;
    failed += r.failures;
  } finally {
    await t.close().catch((e: unknown) => { failed++; console.log(`${t.name}: final check failed: ${(e as Error).message}`); });
  }
}
console.log(`total: ${total} inputs, ${failed} failure(s)`);
process.exitCode = failed ? 1 : 0;
