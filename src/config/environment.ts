// Settings from outside the file: the environment variables a container sets
// (SMARTHOST_LISTEN, SMARTHOST_RELAY_URL, ...) and `start --listen`. They are
// applied over the parsed TOML before validation, so they are checked exactly
// like the file, and a problem they cause names the variable, not a line.
import path from 'node:path';
import { isTable, type Table } from './reader.js';
import type { Problem } from './types.js';

/** One setting that did not come from the file: where from (a variable or an option), and its value. */
export interface Override {
  readonly name: string;
  readonly value: string;
}

interface Variable {
  readonly name: string;
  /** The key it replaces, as problems name it ("relay.url"). */
  readonly key: string;
  /** Paths are resolved against the current folder, where the variable was written. */
  readonly isPath?: boolean;
  readonly help: string;
}

export const VARIABLES: readonly Variable[] = [
  { name: 'SMARTHOST_LISTEN', key: 'listen', help: 'one or more host:port, separated by commas or spaces; replaces the [[listen]] addresses (each listener takes the other settings of the first [[listen]] in the file, or the defaults)' },
  { name: 'SMARTHOST_RELAY_URL', key: 'relay.url', help: 'the [relay] url, e.g. smtp://smtp.example.com:587 (creates [relay] if the file has none)' },
  { name: 'SMARTHOST_RELAY_USERNAME', key: 'relay.username', help: 'the [relay] username' },
  { name: 'SMARTHOST_RELAY_PASSWORD_FILE', key: 'relay.password_file', isPath: true, help: 'the [relay] password_file (replaces password_env)' },
  { name: 'SMARTHOST_HOSTNAME', key: 'hostname', help: 'hostname (EHLO name, Received headers)' },
  { name: 'SMARTHOST_DATA_DIR', key: 'data_dir', isPath: true, help: 'data_dir (queue, users file, mailboxes)' },
];

/** The variables that are set (an empty value counts as unset), in VARIABLES order. */
export function environmentOverrides(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Override[] {
  const out: Override[] = [];
  for (const v of VARIABLES) {
    const value = env[v.name]?.trim();
    if (!value) continue;
    out.push({ name: v.name, value: v.isPath ? path.resolve(cwd, value) : value });
  }
  return out;
}

/** `start --listen ADDR`: the same replacement as SMARTHOST_LISTEN, and it wins over it. */
export function listenOverride(addresses: readonly string[]): Override {
  return { name: '--listen', value: addresses.join(',') };
}

const keyOf = (o: Override) => o.name === '--listen' ? 'listen' : VARIABLES.find((v) => v.name === o.name)!.key;

/** The raw table with the overrides written in (the input is not changed). Later overrides win. */
export function applyOverrides(raw: Table, overrides: readonly Override[]): Table {
  const out: Table = { ...raw };
  for (const o of overrides) {
    const key = keyOf(o);
    if (key === 'listen') {
      const first = Array.isArray(raw.listen) && isTable(raw.listen[0]) ? raw.listen[0] : {};
      const { address: _drop, ...settings } = first;
      out.listen = o.value.split(/[\s,]+/).filter(Boolean).map((address) => ({ ...settings, address }));
    } else if (key.startsWith('relay.')) {
      const relay: Table = isTable(out.relay) ? { ...out.relay } : {};
      const field = key.slice('relay.'.length);
      relay[field] = o.value;
      if (field === 'password_file') delete relay.password_env;
      out.relay = relay;
    } else {
      out[key] = o.value;
    }
  }
  return out;
}

/**
 * Problems caused by an override name it instead of a file line: "SMARTHOST_RELAY_URL (environment):
 * relay.url: ...", with a fix that says which variable to set. `relayFromOverrides`: the file has
 * no [relay], so every relay problem comes from the variables.
 */
export function attributeProblems(problems: readonly Problem[], overrides: readonly Override[], relayFromOverrides: boolean): Problem[] {
  return problems.map((p) => {
    const by = causes(p.path, overrides, relayFromOverrides);
    if (!by.length) return p;
    const where = by.map((o) => o.name.startsWith('--') ? `${o.name} ${o.value}` : `${o.name} (environment)`).join(', ');
    return Object.freeze({ file: where, path: p.path, message: p.message, fix: overrideFix(p, by) });
  });
}

function causes(problemPath: string, overrides: readonly Override[], relayFromOverrides: boolean): Override[] {
  const exact = overrides.filter((o) => {
    const key = keyOf(o);
    return key === 'listen' ? /^listen(\[\d+\](\.address)?)?$/.test(problemPath) : problemPath === key;
  });
  // --listen replaces SMARTHOST_LISTEN: blame only the one that won
  if (exact.length > 1 && exact.every((o) => keyOf(o) === 'listen')) return exact.slice(-1);
  if (exact.length) return exact;
  if (relayFromOverrides && problemPath.startsWith('relay')) return overrides.filter((o) => keyOf(o).startsWith('relay.'));
  return [];
}

/** "write url = "smtp://x:587"" -> "set SMARTHOST_RELAY_URL="smtp://x:587"" when a variable sets that key. */
function overrideFix(p: Problem, by: readonly Override[]): string {
  const m = /^(?:write|add) ([\w.]+) = (.*)$/s.exec(p.fix);
  if (!m) return p.fix;
  const section = p.path.startsWith('relay') ? 'relay.' : '';
  const variable = VARIABLES.find((v) => v.key === `${section}${m[1]}` || (v.key === 'listen' && m[1] === 'address'));
  if (!variable) return p.fix;
  if (variable.key === 'listen' && by.some((o) => o.name === '--listen')) return `give --listen ${m[2]!.replace(/^"([^"]*)".*$/s, '$1')}`;
  return `set ${variable.name}=${m[2]}`;
}
