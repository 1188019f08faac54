// master.cf as Postfix reads it (master(5)): one service per logical line
// (continuation lines start with whitespace), eight fields, then the command's
// arguments, where "-o name=value" (or "-o { name = value }", Postfix 3.0)
// overrides a main.cf parameter for that service only.
import { logicalLines } from './postfix-main-cf.js';

export interface MasterService {
  /** "smtp", "submission", "443", "127.0.0.1:2525" ... */
  readonly service: string;
  readonly type: string;
  readonly command: string;
  readonly overrides: Map<string, string>;
  /** Arguments other than -o, as written. */
  readonly args: string[];
  readonly line: number;
}

/** Splits on whitespace, keeping "{ ... }" groups (Postfix 3.0 brace syntax) as one word. */
function words(text: string): string[] {
  const out: string[] = [];
  const re = /\{[^}]*\}|\S+/g;
  for (const m of text.matchAll(re)) out.push(m[0]);
  return out;
}

/** "-o name=value" and "-o { name = value }" pairs; the rest are plain arguments. */
function parseArgs(argv: string[]): { overrides: Map<string, string>; args: string[] } {
  const overrides = new Map<string, string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    if (a === '-o' && i + 1 < argv.length) a = argv[++i]!;
    else if (a.startsWith('-o') && a.length > 2) a = a.slice(2);
    else { args.push(a); continue; }
    const inner = a.startsWith('{') ? a.slice(1, -1).trim() : a;
    const eq = inner.indexOf('=');
    if (eq > 0) overrides.set(inner.slice(0, eq).trim(), inner.slice(eq + 1).trim());
  }
  return { overrides, args };
}

export function parseMasterCf(text: string): { services: MasterService[]; problems: string[] } {
  const services: MasterService[] = [];
  const problems: string[] = [];
  for (const l of logicalLines(text)) {
    const w = words(l.text);
    if (w.length < 8) { problems.push(`line ${l.line}: "${l.text.slice(0, 60)}" has fewer than 8 fields`); continue; }
    const { overrides, args } = parseArgs(w.slice(8));
    services.push({ service: w[0]!, type: w[1]!, command: w[7]!, overrides, args, line: l.line });
  }
  return { services, problems };
}

const PORTS: Record<string, number> = { smtp: 25, submission: 587, smtps: 465, submissions: 465, urd: 465 };

/** "smtp" -> {port 25}; "127.0.0.1:submission" -> {host, port 587}; undefined for names we cannot place. */
export function servicePort(service: string): { host?: string; port: number } | undefined {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?([^:]+)$/.exec(service);
  if (!m) return undefined;
  const port = /^\d+$/.test(m[2]!) ? Number(m[2]) : PORTS[m[2]!];
  if (port === undefined || port > 65535) return undefined;
  const host = m[1]?.replace(/^\[|\]$/g, '');
  return host === undefined ? { port } : { host, port };
}
