import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalRecipients, type Resolution } from './recipients.js';
import { parsePasswd } from './passwd.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-rcpt-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const passwd = path.join(dir, 'passwd');
fs.writeFileSync(passwd, [
  'root:x:0:0:root:/root:/bin/bash',
  'alice:x:1000:1000:Alice Liddell,,,:/home/alice:/bin/bash',
  'bob:x:1001:1001:&:/home/bob:/bin/sh',
  'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin',
].join('\n') + '\n');
const aliasesFile = path.join(dir, 'aliases');
fs.writeFileSync(aliasesFile, 'mailer-daemon: postmaster\nwebmaster: alice, ops@example.com\nloop1: loop2\nloop2: loop1\nwww-data: www-data, web@example.com\nghost: nobody-here\n');

const table = new LocalRecipients({
  domains: ['localhost', 'host.example'],
  aliases: { root: ['admin@example.com', '\\root'], team: ['alice', 'bob@localhost', 'webmaster'] },
  aliasesFile, passwdFile: passwd,
});

const ok = (r: Resolution) => { assert.ok(r.ok, JSON.stringify(r)); return r.targets; };

describe('local recipients', () => {
  it('knows passwd accounts, aliases, +detail and the always-present postmaster; not strangers', () => {
    const cases: Array<[string, boolean]> = [
      ['alice@localhost', true], ['ALICE@Host.Example', true], ['alice+lists@localhost', true], ['www-data@localhost', true],
      ['webmaster@localhost', true], ['mailer-daemon@localhost', true], ['postmaster@localhost', true], ['Postmaster', true],
      ['carol@localhost', false], ['carol+x@localhost', false], ['../etc@localhost', false],
      ['"alice"@localhost', true], ['"al\\ice"@host.example', true], ['"alice smith"@localhost', false], ['"alice@localhost', false],
    ];
    for (const [addr, known] of cases) assert.equal(table.exists(addr), known, addr);
  });

  it('expands aliases into mailboxes and forwards, deduplicated and in order', () => {
    assert.deepEqual(ok(table.resolve('alice+news@localhost')), [{ kind: 'mailbox', user: 'alice' }]);
    assert.deepEqual(ok(table.resolve('team@localhost')), [
      { kind: 'mailbox', user: 'alice' }, { kind: 'mailbox', user: 'bob' }, { kind: 'forward', address: 'ops@example.com' }]);
    // postmaster -> root (implicit) -> forward + root's own mailbox ("\root")
    assert.deepEqual(ok(table.resolve('mailer-daemon@localhost')), [{ kind: 'forward', address: 'admin@example.com' }, { kind: 'mailbox', user: 'root' }]);
    // an alias that names itself also means its own mailbox: only when it is a user
    assert.deepEqual(ok(table.resolve('www-data@localhost')), [{ kind: 'mailbox', user: 'www-data' }, { kind: 'forward', address: 'web@example.com' }]);
  });

  it('names the loop, the unknown user and the alias that led there', () => {
    const loop = table.resolve('loop1@localhost');
    assert.deepEqual(loop, { ok: false, kind: 'loop', reason: 'alias loop: loop1 -> loop2 -> loop1' });
    const ghost = table.resolve('ghost@localhost');
    assert.deepEqual(ghost, { ok: false, kind: 'unknown', reason: 'unknown user: "nobody-here" (via alias ghost)' });
    assert.deepEqual(table.resolve('carol@localhost'), { ok: false, kind: 'unknown', reason: 'unknown user: "carol"' });
  });

  it('a configured users list replaces passwd; an unreadable aliases file is a temporary failure', () => {
    const own = new LocalRecipients({ domains: ['localhost'], aliases: {}, users: ['carol'], passwdFile: passwd });
    assert.equal(own.exists('carol@localhost'), true);
    assert.equal(own.exists('alice@localhost'), false);
    assert.equal(own.exists('root@localhost'), true);
    const broken = new LocalRecipients({ domains: ['localhost'], aliases: {}, aliasesFile: path.join(dir, 'missing'), passwdFile: passwd });
    assert.equal(broken.exists('anyone@localhost'), 'unavailable');
    const r = broken.resolve('alice@localhost');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.kind, 'unavailable');
    assert.match(!r.ok ? r.reason : '', /cannot read the aliases file .*missing/);
  });

  it('re-reads the aliases file when it changes', () => {
    const file = path.join(dir, 'aliases2');
    fs.writeFileSync(file, 'sales: alice\n');
    const t = new LocalRecipients({ domains: ['localhost'], aliases: {}, aliasesFile: file, passwdFile: passwd });
    assert.equal(t.exists('sales@localhost'), true);
    fs.writeFileSync(file, 'support: alice, bob\n');
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(file, later, later);
    (t as unknown as { aliasesFile: { checkedAt: number } }).aliasesFile.checkedAt = 0; // skip the once-a-second throttle
    assert.equal(t.exists('sales@localhost'), false);
    assert.equal(t.exists('support@localhost'), true);
  });
});

describe('passwd', () => {
  it('reads names, ids and the GECOS full name (& is the login name)', () => {
    const p = parsePasswd(fs.readFileSync(passwd, 'utf8'));
    assert.deepEqual(p.get('alice'), { name: 'alice', uid: 1000, gid: 1000, fullName: 'Alice Liddell' });
    assert.equal(p.get('bob')?.fullName, 'Bob');
    assert.equal(p.size, 4);
  });
});
