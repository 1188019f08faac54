// API tokens for [http]: `smarthost token add NAME` prints a random token once and
// stores only its SHA-256 (a 256-bit random token needs no slow hash: there is
// nothing to guess from the digest). The daemon re-reads the file when it changes,
// so a token added or deleted applies at once, without a reload.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TokenEntry {
  readonly name: string;
  readonly readOnly: boolean;
  /** hex SHA-256 of the token */
  readonly hash: string;
  readonly created: string;
}

const PREFIX = 'shk_';

export function validTokenName(name: string): boolean { return /^[A-Za-z0-9._@+-]{1,64}$/.test(name); }

export function newToken(): string { return PREFIX + crypto.randomBytes(32).toString('base64url'); }

export function hashToken(token: string): string { return crypto.createHash('sha256').update(token, 'utf8').digest('hex'); }

/** Lines `NAME:ro|rw:SHA256:CREATED`; comments and blank lines ignored; a malformed line is an error that names it. */
export function parseTokens(text: string, file: string): TokenEntry[] {
  const out: TokenEntry[] = [];
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const m = /^([^:]+):(ro|rw):([0-9a-f]{64}):(.*)$/.exec(t);
    if (!m || !validTokenName(m[1]!)) throw new Error(`${file}:${i + 1}: not a token line (NAME:ro|rw:SHA256:CREATED); fix it or remove it with \`smarthost token del\``);
    out.push({ name: m[1]!, readOnly: m[2] === 'ro', hash: m[3]!, created: m[4]! });
  });
  return out;
}

export function readTokens(file: string): TokenEntry[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return parseTokens(text, file);
}

export function writeTokens(file: string, tokens: readonly TokenEntry[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const body = ['# smarthost API tokens: edit with `smarthost token add|del NAME`; only SHA-256 hashes are kept',
    ...tokens.map((t) => `${t.name}:${t.readOnly ? 'ro' : 'rw'}:${t.hash}:${t.created}`)].join('\n') + '\n';
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { fs.writeFileSync(fd, body); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
}

/** The daemon's view of the tokens file: re-read when its mtime or size changes. */
export class TokenStore {
  private seen = '';
  private tokens: TokenEntry[] = [];
  private error: Error | undefined;
  constructor(private readonly file: string) {}

  private refresh(): void {
    let stamp = 'absent';
    try { const st = fs.statSync(this.file); stamp = `${st.mtimeMs}:${st.size}:${st.ino}`; } catch { /* absent: no tokens */ }
    if (stamp === this.seen) return;
    this.seen = stamp;
    try { this.tokens = readTokens(this.file); this.error = undefined; } catch (e) { this.tokens = []; this.error = e as Error; }
  }

  /** The entry whose hash matches, compared in constant time over every entry. */
  verify(token: string): TokenEntry | undefined {
    this.refresh();
    const digest = Buffer.from(hashToken(token), 'hex');
    let found: TokenEntry | undefined;
    for (const t of this.tokens) {
      if (crypto.timingSafeEqual(digest, Buffer.from(t.hash, 'hex')) && !found) found = t;
    }
    return found;
  }

  /** Why no token can be checked (an unreadable or malformed file), for the log. */
  problem(): string | undefined { this.refresh(); return this.error?.message; }
  count(): number { this.refresh(); return this.tokens.length; }
}
