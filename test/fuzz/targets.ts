// The fuzz targets as fast-check properties, shared by `npm run fuzz`
// (test/fuzz/main.ts, long runs) and test/fuzz/fuzz.test.ts (a brief run in
// `npm test`). A failure gives its seed and path; replaying them runs the one
// failing input again: npm run fuzz -- --target NAME --seed SEED --path PATH
import fc from 'fast-check';
import { checkConfig, configInput } from './config.js';
import { checkData, dataInput } from './data.js';
import { DialogFuzz } from './dialog.js';
import { dialog } from './gen.js';

export interface Target {
  readonly name: string;
  /** Inputs per fast-check run (a batch) in long runs. */
  readonly batch: number;
  property(): fc.IRawProperty<unknown, boolean>;
  /** Called once after the last batch (stops the daemon and checks the spool). */
  close(): Promise<void>;
  /** What the target saw, for the report. */
  summary(): string;
}

export interface TargetOptions { readonly exactAddresses: boolean }

export function makeTargets(opts: TargetOptions): Target[] {
  let valid = 0;
  let invalid = 0;
  const fuzz = new DialogFuzz({ exactAddresses: opts.exactAddresses, restartEvery: 2000 });
  return [
    {
      name: 'data', batch: 20_000,
      property: () => fc.property(dataInput, (input) => { checkData(input); }),
      close: async () => undefined,
      summary: () => '',
    },
    {
      name: 'config', batch: 2_000,
      property: () => fc.property(configInput, (text) => { if (checkConfig(text)) valid++; else invalid++; }),
      close: async () => undefined,
      summary: () => `${valid} valid configs, ${invalid} with problems`,
    },
    {
      name: 'dialog', batch: 100,
      property: () => fc.asyncProperty(dialog, async (groups) => { await fuzz.run(groups); }),
      close: () => fuzz.stop(),
      summary: () => {
        const s = fuzz.stats;
        return `${s.commands} command replies, ${s.messages} messages stored and checked, ${s.closedEarly} sessions ended by the daemon, ${s.restarts} daemon start(s)`;
      },
    },
  ];
}

export interface RunResult { readonly runs: number; readonly failure?: string }

/** One fast-check run of `target`; on failure the text says how to replay it. */
export async function runBatch(target: Target, numRuns: number, seed: number, path?: string): Promise<RunResult> {
  const details = await fc.check(target.property(), { numRuns, seed, ...(path !== undefined ? { path } : {}), verbose: fc.VerbosityLevel.None });
  if (!details.failed) return { runs: details.numRuns };
  const example = JSON.stringify(details.counterexample, (_k, v: unknown) => Buffer.isBuffer(v) ? v.toString('latin1') : v)?.slice(0, 2000);
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  return {
    runs: details.numRuns,
    failure: [
      `fuzz target "${target.name}" failed after ${details.numRuns} inputs (seed ${details.seed}, path "${details.counterexamplePath}", ${details.numShrinks} shrinks)`,
      `input: ${example}`,
      `error: ${error.slice(0, 3000)}`,
      `replay: npm run fuzz -- --target ${target.name} --seed ${details.seed} --path "${details.counterexamplePath}"`,
    ].join('\n'),
  };
}
