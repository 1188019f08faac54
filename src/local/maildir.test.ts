import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { deliverToMaildir, uniqueName } from './maildir.js';

const NAME = /^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,/]+),S=(\d+)$/;
const NOBODY = { uid: 65534, gid: 65534 };
const notRoot = process.getuid?.() !== 0 && 'chown needs root';

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function owner(file: string): { uid: number; gid: number } {
  const st = fs.statSync(file);
  return { uid: st.uid, gid: st.gid };
}

// Every byte value, bare LF and CR: the file must hold exactly what was given.
const MESSAGE = Buffer.concat([
  Buffer.from('From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nline one\nline two\r'),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
]);

describe('uniqueName', () => {
  it('follows the modern Maildir pattern with this pid and the size', () => {
    const before = Math.floor(Date.now() / 1000);
    const m = NAME.exec(uniqueName('mx.example.com', 1234));
    assert.ok(m, 'name matches the pattern');
    assert.ok(Number(m[1]) >= before && Number(m[1]) <= before + 1);
    assert.ok(Number(m[2]) < 1_000_000);
    assert.equal(Number(m[3]), process.pid);
    assert.equal(m[5], 'mx.example.com');
    assert.equal(m[6], '1234');
  });

  it('counts deliveries, so names made in the same instant differ', () => {
    const names = Array.from({ length: 1000 }, () => uniqueName('h', 1));
    assert.equal(new Set(names).size, 1000);
    const q = names.map((n) => Number(NAME.exec(n)![4]));
    assert.ok(q.every((v, i) => i === 0 || v === q[i - 1]! + 1), 'Q increases by one per name');
  });

  it('escapes / and : in the hostname as the spec says', () => {
    const name = uniqueName('a/b:c', 7);
    assert.ok(name.includes('.a\\057b\\072c,S=7'), name);
    assert.ok(!name.includes('/') && !name.includes(':'));
  });
});

describe('deliverToMaildir', () => {
  let base: string;
  beforeEach(() => { base = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-maildir-')); });
  afterEach(() => { fs.rmSync(base, { recursive: true, force: true }); });

  it('creates the Maildir and puts the message in new/, byte for byte', async () => {
    const dir = path.join(base, 'home', 'alice', 'Maildir');
    const file = await deliverToMaildir(dir, MESSAGE, { hostname: 'mx.example.com' });

    assert.equal(path.dirname(file), path.join(dir, 'new'));
    const m = NAME.exec(path.basename(file));
    assert.ok(m, `${path.basename(file)} matches the pattern`);
    assert.equal(Number(m[6]), MESSAGE.length);
    assert.equal(m[5], 'mx.example.com');
    assert.deepEqual(fs.readFileSync(file), MESSAGE);
    assert.equal(mode(file), 0o600);
    for (const d of [dir, path.join(dir, 'tmp'), path.join(dir, 'new'), path.join(dir, 'cur')]) {
      assert.ok(fs.statSync(d).isDirectory(), d);
      assert.equal(mode(d), 0o700, d);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'cur')), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'new')), [path.basename(file)]);
    // Parents are not private: the mailbox owner must be able to walk through them.
    assert.notEqual(mode(path.join(base, 'home')), 0o700);
  });

  it('writes a message given in chunks as one file, and an empty one', async () => {
    const dir = path.join(base, 'Maildir');
    const chunks = [MESSAGE.subarray(0, 10), Buffer.alloc(0), MESSAGE.subarray(10)];
    const file = await deliverToMaildir(dir, chunks, { hostname: 'h' });
    assert.deepEqual(fs.readFileSync(file), MESSAGE);
    assert.ok(file.endsWith(`,S=${MESSAGE.length}`));
    const empty = await deliverToMaildir(dir, Buffer.alloc(0), { hostname: 'h' });
    assert.equal(fs.statSync(empty).size, 0);
    assert.ok(empty.endsWith(',S=0'));
  });

  it('delivers into an existing Maildir and keeps what is there', async () => {
    const dir = path.join(base, 'Maildir');
    const first = await deliverToMaildir(dir, Buffer.from('one\r\n'), { hostname: 'h' });
    fs.renameSync(first, path.join(dir, 'cur', `${path.basename(first)}:2,S`));
    const second = await deliverToMaildir(dir, Buffer.from('two\r\n'), { hostname: 'h' });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'new')), [path.basename(second)]);
    assert.equal(fs.readdirSync(path.join(dir, 'cur')).length, 1);
  });

  it('gives 500 concurrent deliveries 500 distinct files', async () => {
    const dir = path.join(base, 'Maildir');
    const bodies = Array.from({ length: 500 }, (_, i) => Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`));
    const files = await Promise.all(bodies.map((b) => deliverToMaildir(dir, b, { hostname: 'h' })));
    assert.equal(new Set(files).size, 500);
    assert.equal(fs.readdirSync(path.join(dir, 'new')).length, 500);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
    files.forEach((f, i) => assert.deepEqual(fs.readFileSync(f), bodies[i]));
  });

  it('rejects with ENOTDIR when the Maildir path runs through a regular file', async () => {
    const blocker = path.join(base, 'file');
    fs.writeFileSync(blocker, 'x');
    await assert.rejects(deliverToMaildir(path.join(blocker, 'Maildir'), MESSAGE, { hostname: 'h' }), { code: 'ENOTDIR' });
    await assert.rejects(deliverToMaildir(blocker, MESSAGE, { hostname: 'h' }), { code: 'ENOTDIR' });
    assert.equal(fs.readFileSync(blocker, 'utf8'), 'x');
  });

  it('rejects with ENOTDIR when new/ is a file, and leaves nothing in tmp/', async () => {
    const dir = path.join(base, 'Maildir');
    await deliverToMaildir(dir, MESSAGE, { hostname: 'h' });
    fs.rmSync(path.join(dir, 'new'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'new'), '');
    await assert.rejects(deliverToMaildir(dir, MESSAGE, { hostname: 'h' }), { code: 'ENOTDIR' });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  });

  it('gives a new Maildir and its message to the owner, but not the parents', { skip: notRoot }, async () => {
    const dir = path.join(base, 'vmail', 'alice', 'Maildir');
    const file = await deliverToMaildir(dir, MESSAGE, { hostname: 'h', owner: NOBODY });
    for (const d of [dir, path.join(dir, 'tmp'), path.join(dir, 'new'), path.join(dir, 'cur')]) assert.deepEqual(owner(d), NOBODY, d);
    assert.deepEqual(owner(file), NOBODY);
    assert.equal(mode(file), 0o600);
    assert.deepEqual(owner(path.join(base, 'vmail', 'alice')), { uid: 0, gid: 0 });
    assert.deepEqual(owner(path.join(base, 'vmail')), { uid: 0, gid: 0 });
  });

  it('chowns only what it created in an existing Maildir, and every message', { skip: notRoot }, async () => {
    const dir = path.join(base, 'Maildir');
    fs.mkdirSync(path.join(dir, 'new'), { recursive: true, mode: 0o700 });
    const file = await deliverToMaildir(dir, MESSAGE, { hostname: 'h', owner: NOBODY });
    assert.deepEqual(owner(dir), { uid: 0, gid: 0 });
    assert.deepEqual(owner(path.join(dir, 'new')), { uid: 0, gid: 0 });
    assert.deepEqual(owner(path.join(dir, 'tmp')), NOBODY);
    assert.deepEqual(owner(path.join(dir, 'cur')), NOBODY);
    assert.deepEqual(owner(file), NOBODY);
  });
});
