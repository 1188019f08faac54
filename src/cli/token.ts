// `smarthost token add|del|list NAME`: the bearer tokens of the HTTP API ([http]).
// add prints the token once; the file keeps only its hash.
import { hashToken, newToken, readTokens, validTokenName, writeTokens } from '../http/tokens.js';
import { EXIT, spoolConfigOrReport, UsageError } from './common.js';

export const help = `usage: smarthost token add NAME [--read-only]
       smarthost token del NAME
       smarthost token list
Manages the bearer tokens of the HTTP API and web console ([http]). add prints
the new token once; only its SHA-256 is stored (in [http] tokens_file, default
DATA_DIR/api-tokens). A --read-only token may only GET. The running daemon sees
changes at once.`;

export async function run(opts: { config?: string; readOnly?: boolean }, args: string[]): Promise<number> {
  const [action, name] = args;
  if (!action || !['add', 'del', 'list'].includes(action)) throw new UsageError(help);
  const config = spoolConfigOrReport(opts.config, { prog: 'smarthost token', option: '-c' });
  if (!config) return EXIT.CONFIG;
  const file = config.http?.tokensFile;
  if (!file) {
    process.stderr.write(`smarthost token: ${config.source} has no [http] section, so no API would take a token; add\n  [http]\n  address = "127.0.0.1:8025"\n`);
    return EXIT.CONFIG;
  }
  let tokens;
  try { tokens = readTokens(file); } catch (e) { process.stderr.write(`smarthost token: ${(e as Error).message}\n`); return EXIT.DATAERR; }
  if (action === 'list') {
    for (const t of tokens) process.stdout.write(`${t.name}\t${t.readOnly ? 'read-only' : 'read-write'}\tcreated ${t.created}\n`);
    return EXIT.OK;
  }
  if (!name) throw new UsageError(`smarthost token ${action} needs a NAME`);
  if (!validTokenName(name)) throw new UsageError(`"${name}" is not a valid token name (letters, digits and . _ @ + - only, at most 64)`);
  if (action === 'del') {
    const kept = tokens.filter((t) => t.name !== name);
    if (kept.length === tokens.length) { process.stderr.write(`smarthost token: no token ${name} in ${file}\n`); return EXIT.NOUSER; }
    writeTokens(file, kept);
    process.stdout.write(`deleted ${name}; requests with it now get 401\n`);
    return EXIT.OK;
  }
  if (tokens.some((t) => t.name === name)) { process.stderr.write(`smarthost token: ${name} already exists; delete it first to replace it\n`); return EXIT.DATAERR; }
  const token = newToken();
  writeTokens(file, [...tokens, { name, readOnly: !!opts.readOnly, hash: hashToken(token), created: new Date().toISOString() }]);
  process.stderr.write(`token ${name} (${opts.readOnly ? 'read-only' : 'read-write'}) added to ${file}; it is shown only now:\n`);
  process.stdout.write(`${token}\n`);
  return EXIT.OK;
}
