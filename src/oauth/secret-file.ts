// The refresh token on disk: read its first line, and replace it atomically
// (temp file in the same directory, fsync, rename, fsync the directory) with
// mode 0600, so a crash leaves the old token or the new one, never half of one.
import fs from 'node:fs';
import path from 'node:path';

/** The first line of a secret file, trimmed; throws the fs error (ENOENT …) as is. */
export function readFirstLine(file: string): string {
  return fs.readFileSync(file, 'utf8').split(/\r?\n/, 1)[0]!.trim();
}

export function writeSecretFile(file: string, value: string): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // a leftover tmp file from a crash keeps its old mode otherwise
    fs.writeSync(fd, `${value}\n`);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  syncDir(dir);
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
