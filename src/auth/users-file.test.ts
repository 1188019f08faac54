import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import { hashPassword, readUsers, UserStore, validUserName, verifyPassword, writeUsers } from './users-file.js';

describe('hashPassword / verifyPassword', () => {
  let hash: string;
  before(async () => { hash = await hashPassword('correct horse battery staple'); });

  it('produces an scrypt hash that does not contain the password', () => {
    assert.match(hash, /^\$scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.ok(!hash.includes('correct horse'));
  });

  it('verifies the right password', async () => {
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
  });

  it('rejects a wrong password', async () => {
    assert.equal(await verifyPassword('correct horse battery stapler', hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  it('salts: the same password hashes differently each time, and both verify', async () => {
    const again = await hashPassword('correct horse battery staple');
    assert.notEqual(again, hash);
    assert.equal(await verifyPassword('correct horse battery staple', again), true);
  });

  it('handles non-ASCII passwords', async () => {
    const h = await hashPassword('pässwörd🔑');
    assert.equal(await verifyPassword('pässwörd🔑', h), true);
    assert.equal(await verifyPassword('passwort🔑', h), false);
  });

  it('rejects malformed hashes instead of throwing', async () => {
    assert.equal(await verifyPassword('x', ''), false);
    assert.equal(await verifyPassword('x', 'plaintext'), false);
    assert.equal(await verifyPassword('x', '$scrypt$16384$8$1$c2FsdA=='), false);
  });
});

describe('validUserName', () => {
  it('accepts usual names and rejects separators and control characters', () => {
    for (const ok of ['alice', 'alice@example.com', 'a.b-c_d+e', 'x'.repeat(128)]) assert.equal(validUserName(ok), true, ok);
    for (const bad of ['', 'a:b', 'a b', 'a\nb', 'x'.repeat(129), 'ä']) assert.equal(validUserName(bad), false, JSON.stringify(bad));
  });
});

describe('users file', () => {
  let dir: string;
  let file: string;
  let aliceHash: string;
  let bobHash: string;

  before(async () => {
    aliceHash = await hashPassword('alice-secret');
    bobHash = await hashPassword('bob-secret');
  });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-users-test-'));
    file = path.join(dir, 'etc', 'users');
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writeUsers writes the file with mode 0600 and readUsers reads it back', () => {
    writeUsers(file, new Map([['bob', bobHash], ['alice', aliceHash]]));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readUsers(file), new Map([['alice', aliceHash], ['bob', bobHash]]));
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['users'], 'no temporary file left behind');
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.indexOf('alice:') < text.indexOf('bob:'), 'sorted by name');
  });

  it('replacing an existing 0644 file leaves a 0600 file', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `alice:${aliceHash}\n`, { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    writeUsers(file, new Map([['alice', aliceHash]]));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('readUsers skips comments and blank lines and tolerates a missing file', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `# comment\n\n  alice:${aliceHash}  \r\nno-colon-line\n:nameless\n`);
    assert.deepEqual(readUsers(file), new Map([['alice', aliceHash]]));
    assert.deepEqual(readUsers(path.join(dir, 'missing')), new Map());
  });

  it('UserStore checks passwords; unknown users and wrong passwords are false', async () => {
    writeUsers(file, new Map([['alice', aliceHash]]));
    const store = new UserStore(file);
    assert.equal(store.size, 1);
    assert.equal(await store.check('alice', 'alice-secret'), true);
    assert.equal(await store.check('alice', 'bob-secret'), false);
    assert.equal(await store.check('bob', 'bob-secret'), false);
    assert.equal(await store.check('nobody', ''), false);
  });

  it('UserStore remembers a good login for an hour (no scrypt), never a bad one, and forgets it when the hash changes', async () => {
    writeUsers(file, new Map([['alice', aliceHash]]));
    let now = 0;
    let hashed = 0;
    const verify = (password: string, hash: string) => { hashed++; return verifyPassword(password, hash); };
    const store = new UserStore(file, { now: () => now, verify });
    assert.equal(await store.check('alice', 'alice-secret'), true);
    assert.equal(await store.check('alice', 'alice-secret'), true);
    assert.equal(hashed, 1, 'the second login came from the cache');
    assert.equal(await store.check('alice', 'wrong'), false);
    assert.equal(await store.check('alice', 'wrong'), false);
    assert.equal(hashed, 3, 'each wrong password is hashed');
    now = 3_600_001;
    assert.equal(await store.check('alice', 'alice-secret'), true);
    assert.equal(hashed, 4, 'after an hour: hashed again');

    writeUsers(file, new Map([['alice', bobHash]])); // `user passwd alice`
    fs.utimesSync(file, new Date(Date.now() + 5_000), new Date(Date.now() + 5_000));
    assert.equal(await store.check('alice', 'alice-secret'), false, 'the old password no longer works');
    assert.equal(await store.check('alice', 'bob-secret'), true);
  });

  it('UserStore with no file has no users', async () => {
    const store = new UserStore(file);
    assert.equal(store.size, 0);
    assert.equal(await store.check('alice', 'alice-secret'), false);
  });

  it('UserStore picks up changes to the file without a restart', async () => {
    writeUsers(file, new Map([['alice', aliceHash]]));
    const store = new UserStore(file);
    assert.equal(await store.check('bob', 'bob-secret'), false);

    writeUsers(file, new Map([['alice', aliceHash], ['bob', bobHash]]));
    // make sure the change is visible even on a file system with coarse mtimes
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(file, later, later);
    assert.equal(await store.check('bob', 'bob-secret'), true);
    assert.equal(store.size, 2);

    writeUsers(file, new Map([['bob', bobHash]])); // alice deleted
    const later2 = new Date(Date.now() + 10_000);
    fs.utimesSync(file, later2, later2);
    assert.equal(await store.check('alice', 'alice-secret'), false);
    assert.equal(await store.check('bob', 'bob-secret'), true);

    fs.rmSync(file);
    assert.equal(store.size, 0, 'a deleted file means no users');
    assert.equal(await store.check('bob', 'bob-secret'), false);
  });
});

