// Durability: 250 means fsynced. kill -9 under load from 24 concurrent
// sessions, restart, and every acknowledged message is in the queue intact;
// no partial file survives. A full disk answers 452 4.3.1 and leaves nothing
// half-written; mail is accepted again once space is back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch, removeDir, spoolMessages, startDaemon, tempDir, queueLeftovers, writeConfig } from '../helpers/daemon.js';
import { RawSmtp, sendRaw } from '../helpers/smtp-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bodyFor(session: number, seq: number): string {
  const token = `s${session}-m${seq}`;
  return `Subject: ${token}\r\nMessage-ID: <${token}@load.test>\r\n\r\n` + `${token} line of text for durability testing\r\n`.repeat(20 + (seq % 40));
}

/** One client: sends messages on one connection until stopped; records what got 250. */
async function loadClient(port: number, session: number, acked: Map<string, string>, stop: () => boolean): Promise<void> {
  let c: RawSmtp;
  try { c = await RawSmtp.connect(port); await c.read(); await c.cmd('EHLO load.test'); } catch { return; }
  for (let seq = 0; !stop(); seq++) {
    try {
      const body = bodyFor(session, seq);
      c.write(`MAIL FROM:<load${session}@example.com>\r\nRCPT TO:<sink@example.net>\r\nDATA\r\n`);
      await c.read(); await c.read(); await c.read();
      c.write(body + '.\r\n');
      const r = await c.read();
      const m = /^250 2\.0\.0 Ok: queued as (\w+)$/.exec(r.text);
      if (m) acked.set(m[1]!, body);
    } catch {
      return; // the daemon died under us
    }
  }
  c.close();
}

describe('durability', () => {
  it('loses no acknowledged message when killed with SIGKILL under load', async () => {
    const d = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\n[limits]\nconnections_per_ip = 100\n' });
    const acked = new Map<string, string>();
    let dead = false;
    const clients = Array.from({ length: 24 }, (_, i) => loadClient(d.ports[0]!, i, acked, () => dead));
    // kill once a fair number of messages got their 250
    const t0 = Date.now();
    while (acked.size < 300 && Date.now() - t0 < 20_000) await sleep(20);
    await d.kill9();
    dead = true;
    await Promise.all(clients);
    const ackedAtKill = acked.size;
    assert.ok(ackedAtKill >= 100, `load produced only ${ackedAtKill} acknowledged messages`);

    const again = await launch(d.dir, d.configFile);
    try {
      // recovery runs after the daemon listens: its line follows the "listening on" lines
      const recovered = /queue recovered: (\d+) messages? waiting, (\d+) unacknowledged/.exec(await again.waitForLog(/queue recovered: [^\n]*/));
      assert.ok(recovered, again.logs());
      const stored = new Map(spoolMessages(again.dataDir).map((m) => [m.id, m.body.toString('latin1')]));
      let intact = 0;
      for (const [id, body] of acked) {
        const s = stored.get(id);
        assert.ok(s !== undefined, `acknowledged message ${id} is missing after kill -9`);
        assert.ok(s.endsWith(body), `acknowledged message ${id} is not intact`);
        intact++;
      }
      // whatever else is there (committed, 250 lost with the kill) is whole, never partial
      for (const [id, s] of stored) {
        if (acked.has(id)) continue;
        const token = /Subject: (s\d+-m\d+)/.exec(s)?.[1];
        assert.ok(token, `unacknowledged message ${id} has no subject`);
        const [sess, seq] = token.slice(1).split('-m').map(Number) as [number, number];
        assert.ok(s.endsWith(bodyFor(sess, seq)), `message ${id} in the queue is partial`);
      }
      assert.deepEqual(queueLeftovers(again.dataDir), [], 'partial files were discarded at start');
      const list = JSON.parse(again.cli(['queue', '--json']).stdout) as unknown[];
      assert.equal(list.length, stored.size);
      console.log(`kill -9 under load: ${ackedAtKill} acknowledged, ${intact} intact after restart, ${stored.size - intact} more committed without a 250 received, ${recovered[2]} partial files discarded`);
    } finally {
      await again.stop();
      removeDir(d.dir);
    }
  });

  it('answers 452 4.3.1 when the disk is full, keeps nothing half-written, and recovers', async () => {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir);
    // A real full file system: a small tmpfs (needs root, as in CI). Elsewhere
    // a real file-size limit (ulimit -f) makes the kernel refuse the writes.
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dataDir]).status === 0;
    const wrap = mounted ? undefined : ['sh', '-c', 'ulimit -f 64; exec "$0" "$@"'];
    const configFile = writeConfig(dir, '[[listen]]\naddress = "127.0.0.1:0"\n');
    const d = await launch(dir, configFile, wrap ? { wrap } : {});
    try {
      const send = async (size: number) => {
        const c = await RawSmtp.connect(d.ports[0]!);
        await c.read();
        await c.cmd('EHLO full.test');
        const r = await sendRaw(c, 'a@example.com', ['b@example.net'], 'Subject: fill\r\n\r\n' + ('y'.repeat(98) + '\r\n').repeat(Math.ceil(size / 100)) + '.\r\n');
        c.close();
        return r.text;
      };
      assert.match(await send(1000), /^250 2\.0\.0 Ok: queued as/);
      const filler = path.join(dataDir, 'filler');
      if (mounted) {
        // leave ~40 KB free
        const free = () => { const s = fs.statfsSync(dataDir); return s.bavail * s.bsize; };
        fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 40 * 1024)));
      }
      const before = spoolMessages(dataDir).length;
      assert.equal(await send(200_000), '452 4.3.1 Insufficient system storage');
      assert.deepEqual(queueLeftovers(dataDir), [], 'no half-written file left');
      assert.equal(spoolMessages(dataDir).length, before, 'nothing new in the queue');
      await d.waitForLog(/warning: queue file write error: /);
      if (mounted) fs.unlinkSync(filler);
      assert.match(await send(1000), /^250 2\.0\.0 Ok: queued as/, 'accepted again once there is room');
      console.log(`disk full simulated with ${mounted ? 'a 512 KiB tmpfs' : 'ulimit -f'}`);
    } finally {
      await d.stop();
      if (mounted) execFileSync('umount', [dataDir]);
      removeDir(dir);
    }
  });
});
