// data_dir/quota.json: the recipient counts of route quotas, so that a restart does not hand
// out a fresh quota. Replaced atomically like a state file (write a temp file, fdatasync,
// rename, fsync the folder): after a crash the old or the new counts are there, never a mix.
// Callers waiting at the same time share one write; a caller is released only by a write that
// started after its call, so what it counted is on disk (DirSync's group commit, for one file).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { groupCommit } from './batcher.js';

export type QuotaFileRead =
  | { readonly kind: 'missing' }
  | { readonly kind: 'read'; readonly data: unknown }
  /** Present but not JSON (a disk fault): its mtime is the last moment counts were known. */
  | { readonly kind: 'unreadable'; readonly reason: string; readonly mtimeMs: number };

export class QuotaFile {
  readonly file: string;
  private readonly commit = groupCommit(() => this.write(this.snapshot()));

  /** `snapshot` gives the text to write; it is called when a write starts, so it holds everything counted so far. */
  constructor(dataDir: string, private readonly snapshot: () => string) {
    this.file = path.join(dataDir, 'quota.json');
  }

  static async read(dataDir: string): Promise<QuotaFileRead> {
    const file = path.join(dataDir, 'quota.json');
    let text: string;
    try { text = await fsp.readFile(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'unreadable', reason: (e as Error).message, mtimeMs: Date.now() };
    }
    try { return { kind: 'read', data: JSON.parse(text) as unknown }; } catch (e) {
      return { kind: 'unreadable', reason: `not JSON (${(e as Error).message})`, mtimeMs: (await fsp.stat(file)).mtimeMs };
    }
  }

  /** Resolves once a write that started after this call is durable. */
  save(): Promise<void> { return this.commit.request(); }

  private async write(text: string): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.file);
    const dir = await fsp.open(path.dirname(this.file), fs.constants.O_RDONLY);
    try { await dir.sync(); } finally { await dir.close(); }
  }
}
