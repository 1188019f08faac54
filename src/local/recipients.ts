// Who a local address is: a mailbox, an alias that expands to mailboxes and
// forwarded addresses, or nobody (refused at RCPT). Aliases come from the
// inline [local] aliases table and the aliases file; mailbox owners from
// [local] users or /etc/passwd. "user+detail" is user's (Postfix
// recipient_delimiter = +); root and postmaster always exist (RFC 5321 §4.5.1).
import type { LocalConfig } from '../config/types.js';
import { domainMatches, domainOf, localPartOf } from '../mail/address.js';
import { localValue } from '../mail/smtp-path.js';
import { parseAliases } from './aliases.js';
import { parsePasswd, WatchedFile, type Account } from './passwd.js';

export type LocalTarget =
  | { readonly kind: 'mailbox'; readonly user: string }
  | { readonly kind: 'forward'; readonly address: string };

export type Resolution =
  | { readonly ok: true; readonly targets: readonly LocalTarget[] }
  /** unknown: nobody by that name (5.1.1); loop: aliases point at each other (5.4.6); unavailable: a table could not be read (4.3.0). */
  | { readonly ok: false; readonly kind: 'unknown' | 'loop' | 'unavailable'; readonly reason: string };

export interface LocalRecipientsOptions {
  readonly domains: readonly string[];
  readonly aliases: Readonly<Record<string, readonly string[]>>;
  readonly aliasesFile?: string;
  readonly users?: readonly string[];
  readonly passwdFile?: string;
  /** Told about each problem in the aliases file when it is (re)loaded. */
  readonly onAliasProblem?: (message: string) => void;
}

const ALWAYS = ['root', 'postmaster'];
const MAX_DEPTH = 20;
const MAX_TARGETS = 1000;

/** Why an expansion stopped; becomes a Resolution failure of that kind. */
class Refused extends Error {
  constructor(readonly kind: 'unknown' | 'loop' | 'unavailable', reason: string) { super(reason); }
}

export class LocalRecipients {
  private readonly aliasesFile: WatchedFile<ReadonlyMap<string, readonly string[]>> | undefined;
  private readonly passwd: WatchedFile<Map<string, Account>>;
  private readonly users: ReadonlySet<string> | undefined;

  constructor(private readonly o: LocalRecipientsOptions) {
    this.aliasesFile = o.aliasesFile === undefined ? undefined : new WatchedFile(o.aliasesFile, (text) => {
      const t = parseAliases(text);
      for (const p of t.problems) o.onAliasProblem?.(`${o.aliasesFile}:${p.line}: ${p.message}`);
      return t.entries;
    });
    this.passwd = new WatchedFile(o.passwdFile ?? '/etc/passwd', parsePasswd);
    this.users = o.users ? new Set(o.users) : undefined;
  }

  /** Built from [local]; `onAliasProblem` hears each problem of the aliases file when it is (re)loaded. */
  static from(local: LocalConfig, onAliasProblem?: (message: string) => void): LocalRecipients {
    return new LocalRecipients({
      domains: local.domains, aliases: local.aliases,
      ...(local.aliasesFile !== undefined ? { aliasesFile: local.aliasesFile } : {}),
      ...(local.users !== undefined ? { users: local.users } : {}),
      ...(onAliasProblem ? { onAliasProblem } : {}),
    });
  }

  /** How many aliases the aliases file holds (loading it reports its problems); undefined when it cannot be read. */
  countFileAliases(): number | undefined {
    try { return this.aliasesFile?.get().size ?? 0; } catch { return undefined; }
  }

  isLocal(address: string): boolean {
    const d = domainOf(address);
    return d === '' || domainMatches(d, this.o.domains);
  }

  /** The account that owns `user`'s Maildir files (when smarthost runs as root), if the host has one. */
  account(user: string): Account | undefined {
    try { return this.passwd.get().get(user); } catch { return undefined; }
  }

  /** RCPT-time check: is there anybody by this name? */
  exists(address: string): boolean | 'unavailable' {
    try {
      const name = this.rcptKey(address);
      return this.known(name) || this.known(baseOf(name));
    } catch (e) {
      if (e instanceof Refused) return 'unavailable';
      throw e;
    }
  }

  /** Expands a local address into mailboxes and forwarded addresses (deduplicated, in order). */
  resolve(address: string): Resolution {
    try {
      const targets: LocalTarget[] = [];
      const seen = new Set<string>();
      const add = (t: LocalTarget) => {
        const k = t.kind === 'mailbox' ? `m:${t.user}` : `f:${t.address.toLowerCase()}`;
        if (!seen.has(k)) { seen.add(k); targets.push(t); }
        if (targets.length > MAX_TARGETS) throw new Refused('loop', `<${address}> expands to more than ${MAX_TARGETS} addresses`);
      };
      const name = this.rcptKey(address);
      const start = this.known(name) ? name : baseOf(name);
      if (!this.known(start)) return { ok: false, kind: 'unknown', reason: `unknown user: "${name}"` };
      this.expand(start, [], add);
      return { ok: true, targets };
    } catch (e) {
      if (e instanceof Refused) return { ok: false, kind: e.kind, reason: e.message };
      throw e;
    }
  }

  /** Depth-first alias expansion into `add`; throws Refused for unknown users and loops. */
  private expand(name: string, path: readonly string[], add: (t: LocalTarget) => void): void {
    const here = [...path, name];
    if (path.includes(name) || path.length > MAX_DEPTH) throw new Refused('loop', `alias loop: ${here.join(' -> ')}`);
    // postmaster is root's unless aliased, as in every stock /etc/aliases
    const targets = this.alias(name) ?? (name === 'postmaster' ? ['root'] : undefined);
    if (!targets) return add(this.mailbox(name, path));
    for (const raw of targets) {
      const t = raw.trim();
      if (t.startsWith('\\')) add(this.mailbox(this.key(t.slice(1)), here)); // "\user": that mailbox, no more aliasing (aliases(5))
      else if (t.includes('@') && !this.isLocal(t)) add({ kind: 'forward', address: t });
      else if (this.key(t) === name) add(this.mailbox(name, path)); // an alias listing itself means its own mailbox too
      else this.expand(this.key(t), here, add);
    }
  }

  private mailbox(user: string, via: readonly string[]): LocalTarget {
    if (!this.isUser(user)) throw new Refused('unknown', `unknown user: "${user}"${via.length ? ` (via alias ${via.join(' -> ')})` : ''}`);
    return { kind: 'mailbox', user };
  }

  private key(address: string): string {
    return localPartOf(address).toLowerCase();
  }

  /** A recipient's name: `"bob"@host` is bob@host (RFC 5321 §4.1.2: the quoted and unquoted forms are one mailbox). */
  private rcptKey(address: string): string {
    return localValue(localPartOf(address)).toLowerCase();
  }

  private known(name: string): boolean {
    return this.alias(name) !== undefined || this.isUser(name);
  }

  private isUser(name: string): boolean {
    if (ALWAYS.includes(name)) return true;
    if (this.users) return this.users.has(name);
    try { return this.passwd.get().has(name); } catch (e) {
      throw new Refused('unavailable', `cannot read ${this.passwd.file}: ${(e as Error).message}`);
    }
  }

  private alias(name: string): readonly string[] | undefined {
    const inline = this.o.aliases[name];
    if (inline) return inline;
    if (!this.aliasesFile) return undefined;
    try { return this.aliasesFile.get().get(name); } catch (e) {
      throw new Refused('unavailable', `cannot read the aliases file ${this.aliasesFile.file}: ${(e as Error).message}`);
    }
  }
}

/** "user+detail" -> "user" (the whole name when there is no detail). */
function baseOf(name: string): string {
  const plus = name.indexOf('+');
  return plus > 0 ? name.slice(0, plus) : name;
}
