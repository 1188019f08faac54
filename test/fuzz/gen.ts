// fast-check generators for the fuzz targets: message bodies full of SMTP
// smuggling material, command lines good and bad, addresses in every form the
// MAIL/RCPT path must either carry exactly or refuse, and TOML mutations.
import fc from 'fast-check';
import { dataModel } from './data-model.js';

const latin1 = (a: Uint8Array) => Buffer.from(a).toString('latin1');

/** Body pieces: dots, CR, LF, NUL and every terminator look-alike, next to ordinary text. */
export const bodyPiece = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('a', 'bc', 'Subject: x', 'Received: from h', ' ', '\t', '\0', '.', '..', '\r', '\n', '\r\n', '\r\n.', '\n.', '\r.', '.\r', '.\n', '\r\n..\r\n', '\n.\n', '\r.\r', '\r\n.\n', '\n.\r\n', '\r\n.\r', '\r\n\r\n', 'é', '\xff') },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map(latin1) },
  { weight: 1, arbitrary: fc.constantFrom(5000, 200_000).map((n) => 'L'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('MAIL FROM:<evil@example.com>\r\n', 'RCPT TO:<victim@example.net>\r\n', 'DATA\r\n', 'QUIT\r\n') },
);
export const body = fc.array(bodyPiece, { maxLength: 40 }).map((p) => p.join(''));

/** Byte offsets at which to cut a buffer of `len` octets into writes. */
export const cutsFor = (len: number) => fc.uniqueArray(fc.nat({ max: Math.max(0, len) }), { maxLength: 8 }).map((a) => a.sort((x, y) => x - y));

export function cutAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [0, ...cuts.filter((c) => c > 0 && c < buf.length), buf.length];
  return at.slice(1).map((e, i) => buf.subarray(at[i], e)).filter((b) => b.length > 0);
}

/** Addresses the daemon must carry byte for byte when it accepts them (ASCII dot-atoms). */
export const plainAddress = fc.tuple(
  fc.stringMatching(/^[a-z0-9!#$%&'*+\/=?^_`{|}~-]{1,12}(\.[a-z0-9_-]{1,8}){0,2}$/),
  fc.constantFrom('example.net', 'example.com', 'sub.example.org', 'EXAMPLE.net', 'localhost', '[127.0.0.1]'),
).map(([l, d]) => `${l}@${d}`);

/** Addresses that are easy to get wrong: quoted local parts with specials, A-labels, UTF-8, junk. */
export const trickyAddress = fc.oneof(
  fc.constantFrom('"a>b"@example.net', '"a b"@example.net', '"a\\"b"@example.net', '"a\\\\b"@example.net', '"<x@y>"@example.net',
    '"a@b"@example.net', 'user@xn--bcher-kva.example', 'jörg@example.net', 'user@bücher.example', '""@example.net',
    'a@b@example.net', '@example.net', 'user@', 'user', '<user@example.net>', 'a..b@example.net', '.a@example.net',
    'user@[IPv6:::1]', 'user@-bad-.example', 'x'.repeat(300) + '@example.net', 'user@' + 'd'.repeat(300) + '.net'),
  fc.uint8Array({ minLength: 1, maxLength: 30 }).map((a) => `${latin1(a)}@example.net`),
);

const param = fc.constantFrom('', ' SIZE=1000', ' SIZE=99999999999', ' BODY=8BITMIME', ' BODY=7BIT', ' SMTPUTF8', ' RET=HDRS', ' ENVID=x+2Bid',
  ' NOTIFY=SUCCESS,FAILURE', ' NOTIFY=NEVER', ' ORCPT=rfc822;a@example.net', ' AUTH=<>', ' FOO=bar', ' SIZE=', ' =x', ' SIZE=1 SIZE=2');

export type AddressKind = 'plain' | 'tricky';
export const address = fc.oneof(
  { weight: 3, arbitrary: plainAddress.map((a) => ({ kind: 'plain' as AddressKind, a })) },
  { weight: 1, arbitrary: trickyAddress.map((a) => ({ kind: 'tricky' as AddressKind, a })) },
);

/** One command line (its line end included); `address` is what a MAIL/RCPT names, for the envelope checks. */
export interface Command { readonly line: string; readonly verb: string; readonly address?: { kind: AddressKind; a: string } }

const end = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n');
const word = fc.constantFrom('client.test', '[127.0.0.1]', 'x', '', 'bücher.example', 'a b c', 'x'.repeat(300));
const simple = (verb: string, line: fc.Arbitrary<string>) => fc.tuple(line, end).map(([l, e]): Command => ({ line: l + e, verb }));

const mail = fc.tuple(fc.constantFrom('MAIL FROM:', 'mail from:', 'MAIL FROM: '), address, param, end)
  .map(([v, a, p, e]): Command => ({ line: `${v}<${a.a}>${p}${e}`, verb: 'MAIL', address: a }));
const rcpt = fc.tuple(fc.constantFrom('RCPT TO:', 'rcpt to:', 'RCPT TO: '), address, param, end)
  .map(([v, a, p, e]): Command => ({ line: `${v}<${a.a}>${p}${e}`, verb: 'RCPT', address: a }));
/** Commands after which the daemon ends the session (QUIT, HTTP, a line over line_length): rare, or little else is reached. */
const ender = fc.oneof(
  simple('QUIT', fc.constant('QUIT')),
  simple('OTHER', fc.constantFrom('GET / HTTP/1.1', 'CONNECT a:25 HTTP/1.1', 'POST /x HTTP/1.0')),
  simple('OTHER', fc.constantFrom(3000, 70_000).map((n) => 'NOOP ' + 'x'.repeat(n))),
);

export const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: simple('EHLO', word.map((w) => `EHLO ${w}`)) },
  { weight: 1, arbitrary: simple('HELO', word.map((w) => `HELO ${w}`)) },
  { weight: 4, arbitrary: mail },
  { weight: 6, arbitrary: rcpt },
  { weight: 1, arbitrary: simple('MAIL', fc.constantFrom('MAIL FROM:<>', 'MAIL FROM:', 'MAIL', 'MAIL FROM:<a@example.net', 'MAIL FROM:a@example.net')) },
  { weight: 1, arbitrary: simple('RCPT', fc.constantFrom('RCPT TO:<postmaster>', 'RCPT TO:', 'RCPT', 'RCPT TO:<>', 'RCPT TO:<<a@example.net>>')) },
  { weight: 2, arbitrary: simple('RSET', fc.constant('RSET')) },
  { weight: 2, arbitrary: simple('NOOP', fc.constantFrom('NOOP', 'noop', 'NOOP hello')) },
  { weight: 2, arbitrary: simple('OTHER', fc.constantFrom('VRFY root', 'EXPN staff', 'HELP', 'ETRN example.net', 'BDAT 10 LAST', 'STARTTLS',
    'AUTH PLAIN AGEAYg==', 'AUTH LOGIN', 'AUTH', 'XCLIENT ADDR=1.2.3.4', 'TURN', '', ' ', 'NOOP\rNOOP', 'RSET\0')) },
  { weight: 1, arbitrary: simple('OTHER', fc.uint8Array({ maxLength: 60 }).map(latin1).filter((s) => !s.includes('\n'))) },
  { weight: 1, arbitrary: ender },
);

/** A group: commands sent in one go, optionally ending with DATA, a body and what the client pipelines after its dot. */
export interface Group {
  readonly commands: readonly Command[];
  readonly data?: { readonly body: string; readonly after: readonly Command[]; readonly cuts: readonly number[] };
  readonly cuts: readonly number[];
}

const afterDot = fc.array(fc.constantFrom<Command>({ line: 'NOOP\r\n', verb: 'NOOP' }, { line: 'RSET\r\n', verb: 'RSET' },
  { line: 'MAIL FROM:<a@example.net>\r\n', verb: 'MAIL', address: { kind: 'plain', a: 'a@example.net' } }), { maxLength: 3 });
/** A body that the reference model ends at the client's own final dot (an earlier end is the DATA target's job). */
const ownDot = body.filter((b) => dataModel(Buffer.from(b + '\r\n.\r\n', 'latin1'))?.rest.length === 0);

const withCuts = (commands: Command[], data: [string, Command[]] | null): fc.Arbitrary<Group> => {
  const bytes = commands.reduce((n, c) => n + c.line.length, 0) + (data ? 6 : 0);
  const dataLen = data ? data[0].length + 5 + data[1].reduce((n, c) => n + c.line.length, 0) : 0;
  return fc.tuple(cutsFor(bytes), cutsFor(dataLen)).map(([cuts, dcuts]): Group => ({
    commands, cuts, ...(data ? { data: { body: data[0], after: data[1], cuts: dcuts } } : {}),
  }));
};

/** Anything, maybe ending in DATA; or a transaction (MAIL, RCPTs, a few others, DATA), so that messages get through. */
export const group: fc.Arbitrary<Group> = fc.oneof(
  fc.tuple(fc.array(command, { maxLength: 8 }), fc.option(fc.tuple(ownDot, afterDot), { freq: 3 })).chain(([c, d]) => withCuts(c, d)),
  fc.tuple(mail, fc.array(rcpt, { minLength: 1, maxLength: 4 }), fc.array(command, { maxLength: 2 }), ownDot, afterDot)
    .chain(([m, rs, more, b, after]) => withCuts([m, ...rs, ...more], [b, after])),
);

const ehlo: Command = { line: 'EHLO client.test\r\n', verb: 'EHLO' };
/** A session: most open with a plain EHLO, as clients do. */
export const dialog = fc.tuple(fc.boolean(), fc.array(group, { minLength: 1, maxLength: 5 }))
  .map(([greet, groups]) => greet ? [{ commands: [ehlo], cuts: [] }, ...groups] : groups);
