// End to end: a queue larger than the open-file limit (issue 21). With 50,000
// messages, `smarthost queue` listed 19,981 of them (the rest failed with
// EMFILE and were left out silently), `queue delete ALL` left the rest behind,
// and the daemon's start logged an EMFILE warning per message with advice about
// file owners. Here a few hundred messages under `ulimit -n 128` show the same.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, launch, removeDir, spoolMessages, tempDir, writeConfig } from '../helpers/daemon.js';
import { writeQueueFiles } from '../helpers/spool-files.js';
import { submit } from '../helpers/submit.js';
import { startUpstream } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

/** Below the 300 messages, above what node itself needs to load the CLI and the daemon. */
const LIMIT = 128;
const MESSAGES = 300;
const wrap = ['sh', '-c', `ulimit -n ${LIMIT}; exec "$0" "$@"`];

function setup(): { dir: string; dataDir: string; config: string; ids: string[] } {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const config = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n[queue]\ndefer_delivery = true\n');
  const dataDir = path.join(dir, 'data');
  return { dir, dataDir, config, ids: writeQueueFiles(dataDir, MESSAGES, { deferred: true }) };
}

/** The CLI under the lowered open-file limit. */
function limitedCli(config: string, args: string[]) {
  const r = spawnSync(wrap[0]!, [...wrap.slice(1), process.execPath, CLI, ...args, '-c', config], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe(`a queue of ${MESSAGES} messages under ulimit -n ${LIMIT}`, () => {
  it('queue --json and queue list every message', () => {
    const { config, ids } = setup();
    const json = limitedCli(config, ['queue', '--json']);
    assert.equal(json.stderr, '');
    assert.equal(json.status, 0);
    const listed = (JSON.parse(json.stdout) as Array<{ id: string; recipients: Array<{ state: string }> }>);
    assert.deepEqual(listed.map((e) => e.id), ids, 'every message, in id order');
    assert.ok(listed.every((e) => e.recipients[0]?.state === 'deferred'), 'each with its saved state');
    const text = limitedCli(config, ['queue']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`in ${MESSAGES} Requests\\.\\n$`));
  });

  it('with the daemon stopped, queue hold FILTERS holds every match and queue delete ALL deletes every message', () => {
    const { config, dataDir } = setup();
    const hold = limitedCli(config, ['queue', 'hold', '--to', '@example.net']);
    assert.equal(hold.status, 0, hold.stderr);
    assert.equal(hold.stdout, `smarthost: held ${MESSAGES} messages\n`);
    const held = limitedCli(config, ['queue', '--json', '--state', 'held']);
    assert.equal((JSON.parse(held.stdout) as unknown[]).length, MESSAGES);
    const del = limitedCli(config, ['queue', 'delete', 'ALL']);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(del.stdout, `smarthost: deleted ${MESSAGES} messages\n`);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'queue', 'messages')), []);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'queue', 'state')), []);
  });

  it('the daemon recovers every message at start without EMFILE warnings; queue delete ALL through it deletes them all', async () => {
    const { dir, dataDir, config } = setup();
    const d = await launch(dir, config, { wrap });
    cleanups.push(async () => { await d.stop(); });
    await d.waitForLog(new RegExp(`queue recovered: ${MESSAGES} messages waiting`));
    // the queue manager knows a message once list() at start has read it: the daemon deletes what it knows
    const del = d.cli(['queue', 'delete', 'ALL']);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(del.stdout, `smarthost: deleted ${MESSAGES} messages\n`, 'every recovered message was known to the queue manager');
    assert.doesNotMatch(d.logs(), /cannot be read|EMFILE/);
    assert.deepEqual(spoolMessages(dataDir), []);
    assert.equal(await d.stop(), 0);
  });

  it('a queue file that cannot be read is counted on stderr with its error (exit 74), and the daemon gives no advice about owners for it', async () => {
    const { dir, dataDir, config, ids } = setup();
    // an id that names a directory: readable by nobody as a file, whoever runs the test (root too)
    const odd = ids[0]!.slice(0, 14) + 'FFFD';
    fs.mkdirSync(path.join(dataDir, 'queue', 'messages', odd));
    const json = limitedCli(config, ['queue', '--json']);
    assert.equal(json.status, 74);
    assert.equal((JSON.parse(json.stdout) as unknown[]).length, MESSAGES, 'the readable ones are all listed');
    assert.match(json.stderr, new RegExp(`^smarthost: 1 queue file could not be read \\(1 EISDIR\\), not listed:\\nsmarthost:   ${odd}: EISDIR: `));
    assert.doesNotMatch(json.stderr, /permission|chown/);

    const d = await launch(dir, config, { wrap });
    cleanups.push(async () => { await d.stop(); });
    await d.waitForLog(new RegExp(`warning: ${odd}: queue file cannot be read \\(EISDIR: [^)]*\\); it stays in the queue untouched and is tried again at the next queue rescan`));
    assert.doesNotMatch(d.logs(), /chown|EMFILE/);
    assert.equal((d.logs().match(/cannot be read/g) ?? []).length, 1);
    await d.stop();
  });
});

/** Enough files that reading them takes far longer than one SMTP transaction over loopback. */
const BIG = 30_000;

describe(`a daemon starting on a queue of ${BIG} deferred messages`, () => {
  it('listens before recovery ends: mail sent meanwhile gets its 250 and is relayed; every queued message is recovered, none twice', async () => {
    const up = await startUpstream({});
    cleanups.push(() => up.close());
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const config = writeConfig(dir, `[[listen]]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n`);
    const ids = writeQueueFiles(path.join(dir, 'data'), BIG, { deferred: true }); // next attempt in an hour: not tried here
    const d = await launch(dir, config);
    cleanups.push(async () => { await d.stop(); });
    const id = await submit(d.ports[0]!, 'alice@client.test', ['bob@example.net']);
    assert.doesNotMatch(d.logs(), /queue recovered/, 'the 250 came while recovery was still reading the queue');
    const [m] = await up.waitForMessages(1, 30_000);
    assert.match(m!.data.toString('latin1'), new RegExp(`with ESMTP id ${id}`));
    await d.waitForLog(new RegExp(`queue recovered: ${BIG} messages waiting, 0 unacknowledged`), 120_000);
    await d.waitForLog(new RegExp(`${id}: removed`));
    const json = spawnSync(process.execPath, [CLI, 'queue', '--json', '-c', config], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const listed = JSON.parse(json.stdout) as Array<{ id: string }>;
    assert.deepEqual(listed.map((e) => e.id), ids, 'every queued message is still there, in id order, none twice; the new one is gone');
    assert.equal(up.messages.length, 1, 'nothing else was sent');
    assert.equal(await d.stop(), 0);
  });
});
