// Runs the SMTP dialogs in test/dialogs/*.txt against the real daemon.
// Format: "# listener: trusted|untrusted" picks the listener; consecutive
// "C: line" are sent together (pipelined); each "S: line" must equal the
// next reply line, "S~ regex" must match it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';

const DIR = path.join(ROOT, 'test', 'dialogs');

class LineReader {
  private buf = '';
  private waiters: Array<() => void> = [];
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => { this.buf += d.toString('latin1'); this.waiters.splice(0).forEach((w) => w()); });
    socket.on('close', () => this.waiters.splice(0).forEach((w) => w()));
  }
  line(timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no line within ${timeoutMs}ms (buffer ${JSON.stringify(this.buf)})`)), timeoutMs);
      const tryRead = () => {
        const nl = this.buf.indexOf('\r\n');
        if (nl >= 0) { clearTimeout(t); const l = this.buf.slice(0, nl); this.buf = this.buf.slice(nl + 2); return resolve(l); }
        if (this.socket.destroyed) { clearTimeout(t); return reject(new Error('connection closed')); }
        this.waiters.push(tryRead);
      };
      tryRead();
    });
  }
}

async function runDialog(port: number, text: string): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await new Promise((r) => socket.once('connect', r));
  const reader = new LineReader(socket);
  try {
    const lines = text.split('\n').filter((l) => /^(C:|S:|S~)/.test(l));
    for (let i = 0; i < lines.length;) {
      if (lines[i]!.startsWith('C:')) {
        let out = '';
        while (i < lines.length && lines[i]!.startsWith('C:')) out += lines[i++]!.slice(3) + '\r\n';
        socket.write(out, 'latin1');
        continue;
      }
      const want = lines[i++]!;
      const got = await reader.line();
      if (want.startsWith('S~')) assert.match(got, new RegExp(want.slice(3)), `line ${i}`);
      else assert.equal(got, want.slice(3), `line ${i}`);
    }
  } finally {
    socket.destroy();
  }
}

describe('SMTP dialogs', () => {
  let d: RunningDaemon;
  before(async () => {
    d = await startDaemon({ toml: `
[[listen]]
address = "127.0.0.1:0"

[[listen]]
address = "127.0.0.1:0"
trusted_networks = []

[local]
domains = ["relay.test"]
` });
  });
  after(async () => { await d.stop(); removeDir(d.dir); });

  for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort()) {
    it(file, async () => {
      const text = fs.readFileSync(path.join(DIR, file), 'utf8');
      const which = /^# listener: (\w+)/m.exec(text)?.[1] ?? 'trusted';
      await runDialog(which === 'untrusted' ? d.ports[1]! : d.ports[0]!, text);
    });
  }
});
