// What a password_file must hold: the password alone, on its first line. The classic migration
// mistake is a line copied from Postfix's sasl_passwd ("[smtp.example.com]:587 user:password")
// or its "user:password" part; sent as the password, it gets a 535 that says nothing about why.
// This recognises those shapes, for `check`, `probe` and the delivery log, and describes them
// without the password.

export interface PostfixShape {
  /** What the line looks like, with the password replaced: "[smtp.example.com]:587 alice@example.com:PASSWORD". */
  readonly shape: string;
  /** sasl_passwd: a whole sasl_passwd line; user-password: "user:password" with the configured username (or an address). */
  readonly kind: 'sasl_passwd' | 'user-password';
  /** The 1-based line of the file (always 1: the first line is the one used). */
  readonly line: number;
  /** The user name in the line differs from the route's username: the line may belong to another account. */
  readonly otherUser: boolean;
  /** A sasl_passwd line, or the route's own username: surely not a password (check: error; probe: no login tried). */
  readonly certain: boolean;
}

// sasl_passwd's lookup keys: [host]:port, [host], host.domain[:port], or @domain / user@domain (sender-dependent);
// a bare word is not taken for a host, so that "my pass:word" stays a password
const SASL_LINE = /^(\[[^\]\s]+\](?::\d{1,5})?|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d{1,5})?|[^\s@]*@[A-Za-z0-9.-]+)\s+([^\s:]+):(\S.*)$/;
const USER_PASSWORD = /^([^\s:]+):(\S.*)$/;

/** The Postfix shape of a password file's first line, or undefined when it may well be a password. */
export function postfixShape(firstLine: string, username: string | undefined): PostfixShape | undefined {
  const line = firstLine.trim();
  const same = (u: string) => username !== undefined && u.toLowerCase() === username.toLowerCase();
  const sasl = SASL_LINE.exec(line);
  if (sasl) {
    return { kind: 'sasl_passwd', shape: `${sasl[1]} ${sasl[2]}:PASSWORD`, line: 1, otherUser: !same(sasl[2]!), certain: true };
  }
  const up = USER_PASSWORD.exec(line);
  // "user:password" only when the part before the colon is the username, or an address
  // (a password may contain a colon; it rarely starts with the username or an address)
  if (up && (same(up[1]!) || /^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(up[1]!))) {
    return { kind: 'user-password', shape: `${up[1]}:PASSWORD`, line: 1, otherUser: !same(up[1]!), certain: same(up[1]!) };
  }
  return undefined;
}

/** One sentence for logs, check and probe: what the file holds, and that it must hold the password alone. */
export function describeShape(file: string, s: PostfixShape): string {
  const what = s.kind === 'sasl_passwd' ? 'a line from Postfix\'s sasl_passwd' : 'a "user:password" pair';
  return `password_file ${file} line ${s.line} looks like ${what} (${s.shape}), so all of it would be sent as the password`;
}

/** The fix, naming the file. */
export function shapeFix(file: string): string {
  return `write the password alone in ${file} (one line, nothing else: no [host]:port, no "user:"); the user name goes in username`;
}
