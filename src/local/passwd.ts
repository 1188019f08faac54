// The host's accounts from /etc/passwd: who has a local mailbox when [local]
// users is not set (Postfix local_recipient_maps = unix:passwd.byname), whose
// uid/gid a Maildir gets, and the GECOS name `sendmail` puts in From.
// Re-read when the file changes, checked at most once a second.
import fs from 'node:fs';

export interface Account { readonly name: string; readonly uid: number; readonly gid: number; readonly fullName: string }

export function parsePasswd(text: string): Map<string, Account> {
  const out = new Map<string, Account>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    const name = f[0].toLowerCase();
    // GECOS: "Full Name,room,phone,..."; '&' stands for the capitalised login name
    const fullName = (f[4] ?? '').split(',')[0]!.replace(/&/g, name.charAt(0).toUpperCase() + name.slice(1)).trim();
    if (!out.has(name)) out.set(name, Object.freeze({ name, uid, gid, fullName }));
  }
  return out;
}

const CHECK_MS = 1000;

/** A file read into a value, re-read when its mtime or size changes (checked at most once a second). */
export class WatchedFile<T> {
  private value: T | undefined;
  private stamp = '';
  private checkedAt = 0;

  constructor(
    readonly file: string,
    private readonly parse: (text: string) => T,
  ) {}

  /** The current value; throws (ENOENT, EACCES …) when the file cannot be read. */
  get(): T {
    const now = Date.now();
    if (this.value !== undefined && now - this.checkedAt < CHECK_MS) return this.value;
    const st = fs.statSync(this.file);
    this.checkedAt = now;
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (this.value === undefined || stamp !== this.stamp) {
      this.value = this.parse(fs.readFileSync(this.file, 'utf8'));
      this.stamp = stamp;
    }
    return this.value;
  }
}
