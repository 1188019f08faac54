// Reads the files an old set-up names, from where the set-up lies now. An
// import often runs on a copy (the old server's /etc/postfix copied to the new
// one, or a test fixture): a path under the set-up's own config directory
// (/etc/postfix, /etc/mail) is read from the folder given on the command line,
// and another absolute path (/etc/aliases) is looked for there by its base name
// first, then at the path itself. Certificates are never read, only located.
import fs from 'node:fs';
import path from 'node:path';

export interface Located {
  /** The path as the old set-up wrote it. */
  readonly original: string;
  /** Where it was found on this machine (absolute). */
  readonly actual: string;
}

export class SetupFiles {
  /** `dir`: the folder given on the command line; `configDir`: what the set-up calls it (/etc/postfix). */
  constructor(readonly dir: string, readonly configDir: string) {}

  /** The places `original` may lie, best first. */
  candidates(original: string): string[] {
    const abs = path.resolve(this.dir, original);
    const cfg = this.configDir.replace(/\/+$/, '');
    if (!path.isAbsolute(original)) return [abs];
    if (original === cfg || original.startsWith(cfg + '/')) return [path.join(this.dir, original.slice(cfg.length))];
    const sameDir = path.resolve(this.dir) === path.resolve(cfg);
    return sameDir ? [original] : [path.join(this.dir, path.basename(original)), original];
  }

  /** The first candidate that is a file, or undefined. */
  locate(original: string): Located | undefined {
    const isFile = (p: string) => { try { return fs.statSync(p).isFile(); } catch { return false; } };
    const actual = this.candidates(original).find(isFile);
    return actual === undefined ? undefined : { original, actual: path.resolve(actual) };
  }

  /** The file's text, or undefined when it is absent; other read errors throw. */
  read(original: string): (Located & { text: string }) | undefined {
    const found = this.locate(original);
    if (!found) return undefined;
    return { ...found, text: fs.readFileSync(found.actual, 'utf8') };
  }
}
