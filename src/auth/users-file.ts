// SASL users for inbound AUTH, one per line: "name:$scrypt$N$r$p$salt$hash".
// Passwords are never stored, only scrypt hashes (node:crypto, memory-hard).
// The daemon re-reads the file when it changes, so `smarthost user add`
// takes effect without a restart.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const N = 16384, R = 8, P = 1, KEYLEN = 32;

function scrypt(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    crypto.scrypt(password, salt, KEYLEN, { N: n, r, p, maxmem: 256 * n * r }, (e, key) => (e ? reject(e) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, N, R, P);
  return `$scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = /^\$scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await scrypt(password, Buffer.from(m[4]!, 'base64'), Number(m[1]), Number(m[2]), Number(m[3]));
  return key.length === expected.length && crypto.timingSafeEqual(key, expected);
}

export function validUserName(name: string): boolean {
  return /^[A-Za-z0-9._@+-]{1,128}$/.test(name);
}

export function readUsers(file: string): Map<string, string> {
  const users = new Map<string, string>();
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return users;
    throw e;
  }
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const colon = t.indexOf(':');
    if (colon > 0) users.set(t.slice(0, colon), t.slice(colon + 1));
  }
  return users;
}

/** Atomically replaces the users file (mode 0600). */
export function writeUsers(file: string, users: Map<string, string>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const body = ['# smarthost SASL users: edit with `smarthost user add|del|passwd NAME`',
    ...[...users].sort(([a], [b]) => a.localeCompare(b)).map(([n, h]) => `${n}:${h}`)].join('\n') + '\n';
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { fs.writeFileSync(fd, body); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
}

// A hash of a random password, checked for unknown users so that a wrong
// name takes as long as a wrong password (no user enumeration by timing).
let dummyHash: Promise<string> | undefined;

/**
 * Logins that passed the scrypt check, so that a client logging in on every connection (one
 * message per connection, as cron jobs and PHP send) pays the memory-hard hash once an hour, not
 * each time (Dovecot auth_cache, saslauthd -c). Kept in memory only, as an HMAC under a key
 * made at start, never the password; an entry holds for the user's stored hash only, so
 * `user passwd` or `user del` ends it at once. Failures are never cached: every wrong
 * password costs a full scrypt.
 */
class LoginCache {
  private readonly key = crypto.randomBytes(32);
  private readonly entries = new Map<string, { hash: string; mac: Buffer; until: number }>();
  constructor(private readonly ttlMs = 3_600_000, private readonly max = 10_000, private readonly now = Date.now) {}

  private mac(name: string, password: string): Buffer {
    return crypto.createHmac('sha256', this.key).update(name).update('\0').update(password).digest();
  }
  has(name: string, hash: string, password: string): boolean {
    const e = this.entries.get(name);
    if (!e || e.hash !== hash || e.until <= this.now()) return false;
    return crypto.timingSafeEqual(e.mac, this.mac(name, password));
  }
  add(name: string, hash: string, password: string): void {
    this.entries.delete(name);
    this.entries.set(name, { hash, mac: this.mac(name, password), until: this.now() + this.ttlMs });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}

export class UserStore {
  private users = new Map<string, string>();
  private mtimeMs = -1;
  private readonly verified: LoginCache;
  private readonly verify: typeof verifyPassword;
  constructor(private readonly file: string, opts: { cacheTtlMs?: number; now?: () => number; verify?: typeof verifyPassword } = {}) {
    this.verified = new LoginCache(opts.cacheTtlMs, undefined, opts.now);
    this.verify = opts.verify ?? verifyPassword;
  }

  private refresh(): void {
    let mtimeMs = 0;
    try { mtimeMs = fs.statSync(this.file).mtimeMs; } catch { /* no file: no users */ }
    if (mtimeMs !== this.mtimeMs) {
      this.users = readUsers(this.file);
      this.mtimeMs = mtimeMs;
    }
  }

  get size(): number { this.refresh(); return this.users.size; }

  async check(name: string, password: string): Promise<boolean> {
    this.refresh();
    const hash = this.users.get(name);
    if (hash === undefined) {
      dummyHash ??= hashPassword(crypto.randomBytes(12).toString('hex'));
      await verifyPassword(password, await dummyHash);
      return false;
    }
    if (this.verified.has(name, hash, password)) return true;
    const good = await this.verify(password, hash);
    if (good) this.verified.add(name, hash, password);
    return good;
  }
}
