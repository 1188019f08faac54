import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { OutgoingMessage } from '../mail/delivery.js';
import { rewriteAddress, rewriteHead, rewriteOutgoing, type SenderRules } from './sender-rewrite.js';

const rules: SenderRules = {
  map: {
    '@applesauce.localdomain': 'alerts@example.com',
    'backup@applesauce.localdomain': 'backup@example.com',
    'root@other.host': 'ops@example.com',
    'Billing@Shop.Example': 'billing@example.com',
    'jürgen@other.host': 'j@example.com',
  },
  hostname: 'applesauce.localdomain',
};
const elsewhere: SenderRules = { map: rules.map, hostname: 'box.example' };

describe('rewriteAddress', () => {
  const cases: Array<[string, string, string, SenderRules?]> = [
    ['bare name is qualified, then mapped', 'root', 'alerts@example.com'],
    ['bare name with no rule is only qualified', 'cron', 'cron@box.example', elsewhere],
    ['exact key', 'root@other.host', 'ops@example.com'],
    ['@domain key', 'www-data@applesauce.localdomain', 'alerts@example.com'],
    ['@domain key, case-insensitive', 'Root@AppleSauce.LocalDomain', 'alerts@example.com'],
    ['@domain key, trailing dot', 'root@applesauce.localdomain.', 'alerts@example.com'],
    ['exact key, case-insensitive address', 'ROOT@OTHER.HOST', 'ops@example.com'],
    ['exact key written with capitals', 'billing@shop.example', 'billing@example.com'],
    ['exact beats domain', 'backup@applesauce.localdomain', 'backup@example.com'],
    ['"@box" = "@domain" keeps the user (Postfix generic)', 'Cron@box.example', 'Cron@example.org', { map: { '@box.example': '@example.org' }, hostname: 'box.example' }],
    ['bare name, "@domain" value', 'root', 'root@example.org', { map: { '@box.example': '@example.org' }, hostname: 'box.example' }],
    ['exact beats domain, case-insensitive', 'BACKUP@applesauce.localdomain', 'backup@example.com'],
    ['no match', 'alice@example.org', 'alice@example.org'],
    ['other local part at an exact key\'s domain', 'daemon@other.host', 'daemon@other.host'],
    ['null sender', '', ''],
    ['unicode local part, @domain key', 'rené@applesauce.localdomain', 'alerts@example.com'],
    ['unicode local part, exact key, case-insensitive', 'JÜRGEN@other.host', 'j@example.com'],
  ];
  for (const [name, input, want, r = rules] of cases) {
    it(name, () => assert.equal(rewriteAddress(input, r), want));
  }
});

/** A header section from lines: CRLF after each, then the empty line. Strings are latin1 unless given as Buffers. */
function head(...lines: Array<string | Buffer>): Buffer {
  return Buffer.concat(lines.map((l) => Buffer.concat([typeof l === 'string' ? Buffer.from(l, 'latin1') : l, Buffer.from('\r\n')])).concat(Buffer.from('\r\n')));
}

const RECEIVED = 'Received: from cron by applesauce.localdomain\r\n\tfor <root@applesauce.localdomain>; Mon, 1 Jan 2024 00:00:00 +0000';

describe('rewriteHead', () => {
  const cases: Array<[string, string | Buffer, string | Buffer]> = [
    ['plain address', 'From: root@applesauce.localdomain', 'From: alerts@example.com'],
    ['bare name', 'From: root', 'From: alerts@example.com'],
    ['display name quoted', 'From: "Cron Daemon" <root@applesauce.localdomain>', 'From: "Cron Daemon" <alerts@example.com>'],
    ['quoted name holding specials', 'From: "Daemon, Cron <root@x>" <root>', 'From: "Daemon, Cron <root@x>" <alerts@example.com>'],
    ['encoded-word name', 'From: =?UTF-8?B?Q3JvbiBEw6Ztb24=?= <root@applesauce.localdomain>', 'From: =?UTF-8?B?Q3JvbiBEw6Ztb24=?= <alerts@example.com>'],
    ['quoted name with an escaped quote', 'From: "Cron \\" <Daemon>" <root>', 'From: "Cron \\" <Daemon>" <alerts@example.com>'],
    ['name in a comment, nested', 'From: root (Cron (nightly) <Daemon>, x)', 'From: alerts@example.com (Cron (nightly) <Daemon>, x)'],
    ['unquoted name', 'From: Cron Daemon <root>', 'From: Cron Daemon <alerts@example.com>'],
    ['folded From', 'From: "Cron Daemon"\r\n\t<root@applesauce.localdomain>', 'From: "Cron Daemon"\r\n\t<alerts@example.com>'],
    ['multiple addresses in From',
      'From: root@other.host, "Me" <me@example.org>,\r\n root@applesauce.localdomain (Cron)',
      'From: ops@example.com, "Me" <me@example.org>,\r\n alerts@example.com (Cron)'],
    ['Reply-To with a group',
      'Reply-To: Admins: root@other.host, "Ops" <root@applesauce.localdomain>, a@example.org;',
      'Reply-To: Admins: ops@example.com, "Ops" <alerts@example.com>, a@example.org;'],
    ['Sender', 'Sender: root@applesauce.localdomain', 'Sender: alerts@example.com'],
    ['Resent-From and Resent-Sender, any case',
      'resent-from: root\r\nRESENT-SENDER: <root@other.host>', 'resent-from: alerts@example.com\r\nRESENT-SENDER: <ops@example.com>'],
    ['field name case and no space', 'FROM:root', 'FROM:alerts@example.com'],
    ['quoted local part that needs no quotes', 'From: <"root"@other.host>', 'From: <ops@example.com>'],
    ['obsolete route', 'From: <@relay.example:root@other.host>', 'From: <ops@example.com>'],
    ['comment inside the angle brackets', 'From: Cron < root (daemon) >', 'From: Cron <alerts@example.com>'],
    ['UTF-8 local part', Buffer.from('From: "Jürgen" <jürgen@other.host>', 'utf8'), Buffer.from('From: "Jürgen" <j@example.com>', 'utf8')],
    ['unicode target address is written as UTF-8',
      'From: x@uni.example', Buffer.from('From: dépôt@example.com', 'utf8')],
  ];
  const uni: SenderRules = { map: { ...rules.map, 'x@uni.example': 'dépôt@example.com' }, hostname: rules.hostname };
  for (const [name, input, want] of cases) {
    it(name, () => {
      const out = rewriteHead(head(RECEIVED, 'Subject: cron', input, 'To: root@applesauce.localdomain'), uni);
      assert.equal(out.toString('latin1'), head(RECEIVED, 'Subject: cron', want, 'To: root@applesauce.localdomain').toString('latin1'));
    });
  }

  it('keeps every other field byte-identical, 8-bit Subject and folding included', () => {
    const subject = Buffer.concat([Buffer.from('Subject: caf'), Buffer.from([0xe9]), Buffer.from(' \xc3\xa9t\xc3\xa9\r\n\t folded  ', 'latin1')]);
    const others = [RECEIVED, 'To: root@applesauce.localdomain,\r\n  "Root" <root@other.host>', subject, 'X-Odd:   spaced \t'];
    const out = rewriteHead(head(others[0]!, 'From: root', others[1]!, others[2]!, others[3]!), rules);
    assert.deepEqual(out, head(others[0]!, 'From: alerts@example.com', others[1]!, others[2]!, others[3]!));
  });

  const untouched: Array<[string, string | Buffer]> = [
    ['no sender fields', 'To: root@applesauce.localdomain'],
    ['From with nothing to rewrite, folded', 'From: "Alice"\r\n   <alice@example.org> (a comment)'],
    ['a quoted local part with nothing to rewrite', 'From: <"alice"@example.org>'],
    ['a phrase without an address', 'From: Cron Daemon'],
    ['an empty group', 'From: undisclosed-recipients:;'],
    ['null address', 'From: <>'],
    ['unclosed angle bracket', 'From: "Cron" <root@applesauce.localdomain'],
    ['an address that is not UTF-8', Buffer.from('From: j\xfcrgen@applesauce.localdomain', 'latin1')],
    ['a look-alike field', 'X-From: root@applesauce.localdomain'],
  ];
  for (const [name, field] of untouched) {
    it(`returns the same bytes: ${name}`, () => {
      const input = head(RECEIVED, field, Buffer.from('Subject: \xe9t\xe9', 'latin1'));
      const copy = Buffer.from(input);
      const out = rewriteHead(input, rules);
      assert.equal(out, input, 'the very same Buffer');
      assert.deepEqual(out, copy);
    });
  }

  it('does not touch anything after the empty line', () => {
    const input = Buffer.from('From: a@example.org\r\n\r\nFrom: root\r\n', 'latin1');
    assert.equal(rewriteHead(input, rules), input);
  });
});

// --- rewriteOutgoing --------------------------------------------------------------------------

const HEAD =
  `${RECEIVED}\r\n` +
  'From: "Cron Daemon" <root@applesauce.localdomain>\r\n' +
  'To: bob@example.net\r\n' +
  'Subject: Cron <root@applesauce> run-parts\r\n';
// No second empty line in the body: a reader that misses a CRLFCRLF split across chunks finds no head at all.
const BODY = '\r\nFrom: root@applesauce.localdomain is in the body\r\n' + 'x'.repeat(5000) + '\r\n';
const STORED = Buffer.from(HEAD + BODY, 'latin1');
const WANT = Buffer.from(HEAD.replace('<root@applesauce.localdomain>\r\nTo', '<alerts@example.com>\r\nTo') + BODY, 'latin1');
const HEAD_END = HEAD.length + 2;   // offset just past "\r\n\r\n"

interface Fake { msg: OutgoingMessage; opened: Readable[] }

/** An OutgoingMessage whose body() gives `bytes` in chunks cut at `cuts`, and records each stream it opens. */
function fake(bytes: Buffer, cuts: readonly number[], sender = 'root', fail?: Error): Fake {
  const opened: Readable[] = [];
  const edges = [0, ...cuts, bytes.length];
  const chunks = edges.slice(1).map((end, i) => bytes.subarray(edges[i]!, end));
  const msg: OutgoingMessage = {
    id: 'Q1', sender, recipients: [], size: bytes.length, eightBit: false, ret: 'HDRS',
    body() {
      const stream = Readable.from(fail ? failing(chunks, fail) : chunks);
      opened.push(stream);
      return stream;
    },
  };
  return { msg, opened };
}

async function* failing(chunks: readonly Buffer[], error: Error): AsyncGenerator<Buffer> {
  yield chunks[0]!;
  throw error;
}

async function read(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Cut points that split the head boundary awkwardly: inside "\r\n\r\n", just around it, and twice at once. */
function awkwardCuts(): number[][] {
  const cuts: number[][] = [[], Array.from({ length: HEAD_END + 10 }, (_, i) => i + 1)];
  for (let at = HEAD_END - 6; at <= HEAD_END + 3; at++) cuts.push([at]);
  cuts.push([HEAD_END - 3, HEAD_END - 1], [HEAD_END - 2, HEAD_END + 1], [10, HEAD_END - 4, HEAD_END - 2]);
  return cuts;
}

describe('rewriteOutgoing', () => {
  for (const cuts of awkwardCuts()) {
    it(`rewrites sender and From, chunks cut at ${cuts.length > 4 ? 'every byte' : `[${cuts.join(', ')}]`}`, async () => {
      const { msg } = fake(STORED, cuts);
      const out = await rewriteOutgoing(msg, rules);
      assert.equal(out.sender, 'alerts@example.com');
      const stream = out.body();
      assert.equal(stream.readableObjectMode, false, 'a byte stream');
      const first = await read(stream);
      assert.equal(first.toString('latin1'), WANT.toString('latin1'));
      assert.equal(out.size, WANT.length);
      assert.deepEqual(await read(out.body()), first, 'a second body() gives the same bytes');
      assert.equal(out.ret, 'HDRS');
      assert.equal(out.id, 'Q1');
    });
  }

  it('returns null-sender mail unchanged without reading it', async () => {
    const { msg, opened } = fake(STORED, [], '');
    assert.equal(await rewriteOutgoing(msg, rules), msg);
    assert.equal(opened.length, 0);
  });

  it('returns msg itself when nothing changes, and closes what it read', async () => {
    const stored = Buffer.from('Received: x\r\nFrom: a@example.org\r\n\r\nbody\r\n');
    const { msg, opened } = fake(stored, [5], 'a@example.org');
    assert.equal(await rewriteOutgoing(msg, rules), msg);
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.destroyed, true);
  });

  it('rewrites only the sender when no header field changes', async () => {
    const stored = Buffer.from('Received: x\r\nFrom: a@example.org\r\n\r\nbody\r\n');
    const { msg } = fake(stored, [3], 'root@other.host');
    const out = await rewriteOutgoing(msg, rules);
    assert.equal(out.sender, 'ops@example.com');
    assert.equal(out.size, stored.length);
    assert.deepEqual(await read(out.body()), stored);
  });

  it('does not rewrite headers without an empty line in the first MiB', async () => {
    const filler = 'X-Filler: ' + 'y'.repeat(70) + '\r\n';
    const stored = Buffer.from('From: root\r\n' + filler.repeat(Math.ceil(1024 * 1024 / filler.length)) + '\r\nbody\r\n');
    const { msg, opened } = fake(stored, Array.from({ length: 20 }, (_, i) => (i + 1) * 65536));
    const out = await rewriteOutgoing(msg, rules);
    assert.equal(out.sender, 'alerts@example.com');
    assert.equal(out.size, stored.length);
    assert.deepEqual(await read(out.body()), stored);
    assert.equal(opened[0]!.destroyed, true);
  });

  const limitCases: Array<[string, number, boolean]> = [
    ['a header section of exactly 1 MiB is rewritten', 1024 * 1024, true],
    ['one byte more is not', 1024 * 1024 + 1, false],
  ];
  for (const [name, headLength, rewritten] of limitCases) {
    it(name, async () => {
      const start = 'From: root\r\nX-Pad: ';
      const stored = Buffer.from(start + 'y'.repeat(headLength - start.length - 4) + '\r\n\r\nbody\r\n');
      const { msg } = fake(stored, [65536, 1024 * 1024 - 1]);
      const out = await rewriteOutgoing(msg, rules);
      const body = await read(out.body());
      assert.equal(body.subarray(0, 30).toString().startsWith('From: alerts@example.com\r\n'), rewritten);
      assert.equal(out.size, body.length);
    });
  }

  it('opens the stored body only when read, and closes it when the reader stops early', async () => {
    const { msg, opened } = fake(STORED, [HEAD_END + 100, HEAD_END + 200, HEAD_END + 300]);
    const out = await rewriteOutgoing(msg, rules);
    assert.equal(opened.length, 1);
    out.body().destroy();
    await tick();
    assert.equal(opened.length, 1, 'a body destroyed before reading opens nothing');
    let n = 0;
    for await (const _ of out.body()) if (++n === 2) break;
    await tick();
    assert.equal(opened.length, 2);
    assert.equal(opened[1]!.destroyed, true);
  });

  it('passes on an error from the stored body and closes it', async () => {
    const { msg, opened } = fake(STORED, [HEAD_END + 10], 'root', new Error('disk gone'));
    const out = await rewriteOutgoing(msg, rules);
    await assert.rejects(read(out.body()), /disk gone/);
    assert.equal(opened.at(-1)!.destroyed, true);
  });

  it('rejects when the stored body fails before the head ends, and closes it', async () => {
    const { msg, opened } = fake(STORED, [20], 'root', new Error('disk gone'));
    await assert.rejects(rewriteOutgoing(msg, rules), /disk gone/);
    assert.equal(opened[0]!.destroyed, true);
  });
});
