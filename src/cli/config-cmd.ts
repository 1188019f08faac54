// `smarthost config default`: the embedded default as a smarthost.toml to start from.
import { defaultToml } from '../config/default-toml.js';
import { EXIT, UsageError } from './common.js';

export const help = `usage: smarthost config default
Prints the embedded default configuration (what smarthost runs on when it finds
no file) as smarthost.toml, every key with its default value:
  smarthost config default > smarthost.toml
contrib/smarthost.example.toml shows every section with comments.`;

export function run(args: readonly string[]): number {
  if (args.length !== 1 || args[0] !== 'default') throw new UsageError(help);
  process.stdout.write(defaultToml());
  return EXIT.OK;
}
