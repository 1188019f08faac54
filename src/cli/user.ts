// `smarthost user add|del|list|passwd NAME`: the SASL users of inbound AUTH.
// Passwords are prompted (not echoed) or read from stdin with --password-stdin.
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { hashPassword, readUsers, validUserName, writeUsers } from '../auth/users-file.js';
import { EXIT, spoolConfigOrReport, UsageError } from './common.js';

export const help = `usage: smarthost user add NAME [--password-stdin]
       smarthost user passwd NAME [--password-stdin]
       smarthost user del NAME
       smarthost user list
Manages the users of inbound AUTH in [auth] users_file (scrypt hashes).`;

async function readPassword(fromStdin: boolean, action: string, name: string): Promise<string> {
  if (!fromStdin && !process.stdin.isTTY) {
    // a script, cron or a container: no terminal to ask on, and reading whatever stdin holds
    // (often nothing) would only end in "too short"
    throw new UsageError(`no terminal to ask for the password on; give it on standard input with --password-stdin:\n` +
      `  printf '%s\\n' "$PASSWORD" | smarthost user ${action} ${name} --password-stdin`);
  }
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  const ask = (q: string) => new Promise<string>((resolve) => {
    // readline echoes what is typed to its output: give it one that drops everything while muted
    let muted = false;
    const output = new Writable({ write(chunk, _enc, done) { if (!muted) process.stderr.write(chunk); done(); } });
    const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
    rl.question(q, (a) => { rl.close(); process.stderr.write('\n'); resolve(a); });
    muted = true;
  });
  const a = await ask('Password: ');
  const b = await ask('Again: ');
  if (a !== b) throw new UsageError('the passwords do not match');
  return a;
}

export async function run(opts: { config?: string; passwordStdin?: boolean }, args: string[]): Promise<number> {
  const [action, name] = args;
  if (!action || !['add', 'del', 'list', 'passwd'].includes(action)) throw new UsageError(help);
  const config = spoolConfigOrReport(opts.config, { prog: 'smarthost user', option: '-c' });
  if (!config) return EXIT.CONFIG;
  const file = config.auth.usersFile;
  const users = readUsers(file);
  if (action === 'list') {
    for (const n of [...users.keys()].sort()) process.stdout.write(`${n}\n`);
    return EXIT.OK;
  }
  if (!name) throw new UsageError(`smarthost user ${action} needs a NAME`);
  if (!validUserName(name)) throw new UsageError(`"${name}" is not a valid user name (letters, digits and . _ @ + - only)`);
  if (action === 'del') {
    if (!users.delete(name)) { process.stderr.write(`smarthost: no user ${name} in ${file}\n`); return EXIT.NOUSER; }
    writeUsers(file, users);
    process.stdout.write(`deleted ${name}\n`);
    return EXIT.OK;
  }
  if (action === 'add' && users.has(name)) { process.stderr.write(`smarthost: ${name} already exists; use \`smarthost user passwd ${name}\`\n`); return EXIT.DATAERR; }
  if (action === 'passwd' && !users.has(name)) { process.stderr.write(`smarthost: no user ${name}; use \`smarthost user add ${name}\`\n`); return EXIT.NOUSER; }
  const password = await readPassword(!!opts.passwordStdin, action, name);
  if (password.length < 8) throw new UsageError('the password must have at least 8 characters');
  users.set(name, await hashPassword(password));
  writeUsers(file, users);
  process.stdout.write(`${action === 'add' ? 'added' : 'changed the password of'} ${name} in ${file}\n`);
  return EXIT.OK;
}
