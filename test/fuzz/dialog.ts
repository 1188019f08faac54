// The inbound dialog against the real daemon over loopback: random pipelined
// command groups (junk, huge lines, bare LF, every MAIL/RCPT address form),
// DATA bodies full of smuggling variants, cut into random writes. Invariants:
// the daemon stays up; every command line gets exactly one reply, in order
// (a missing reply times out, an extra one is left over at QUIT); a 354 only
// ever answers DATA; what gets 250 is on disk with the body the reference
// model gives and the addresses as sent; nothing else is stored.
import assert from 'node:assert/strict';
import net from 'node:net';
import { removeDir, spoolMessage, spoolMessages, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { crlfModel, dataModel } from './data-model.js';
import { cutAt, type AddressKind, type Command, type Group } from './gen.js';

const REPLY_MS = 15_000;
/** Replies after which the daemon may end the session. */
const CLOSING = new Set([221, 421]);

interface Reply { code: number; text: string }

/** A raw client that keeps every byte the daemon sends, so that an extra reply cannot hide. */
class Wire {
  private buf = '';
  closed = false;
  private wake: (() => void) | undefined;
  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => { this.buf += d.toString('latin1'); this.wake?.(); });
    socket.on('close', () => { this.closed = true; this.wake?.(); });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new Wire(s)));
      s.once('error', reject);
    });
  }

  /** Writes each piece on its own turn of the event loop, so the daemon sees the cuts (mostly). */
  async send(pieces: readonly Buffer[]): Promise<void> {
    for (const p of pieces) {
      if (this.closed) return;
      this.socket.write(p);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** The next whole reply, or 'closed' when the daemon hung up first. */
  read(what: string): Promise<Reply | 'closed'> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.wake = undefined; reject(new Error(`desync: no reply to ${what} within ${REPLY_MS} ms; pending ${JSON.stringify(this.buf.slice(0, 200))}`)); }, REPLY_MS);
      const attempt = () => {
        for (let pos = 0, nl = this.buf.indexOf('\r\n'); nl !== -1; pos = nl + 2, nl = this.buf.indexOf('\r\n', pos)) {
          const line = this.buf.slice(pos, nl);
          if (/^\d{3}(?: |$)/.test(line)) {
            const text = this.buf.slice(0, nl);
            this.buf = this.buf.slice(nl + 2);
            return done({ code: Number(line.slice(0, 3)), text });
          }
        }
        if (this.closed) return done('closed');
        this.wake = attempt;
      };
      const done = (r: Reply | 'closed') => { clearTimeout(timer); this.wake = undefined; resolve(r); };
      attempt();
    });
  }

  /** After a closing reply: the daemon must hang up, with nothing more said. */
  async expectClosed(after: string): Promise<void> {
    const r = await this.read(`the close after ${after}`);
    assert.equal(r, 'closed', `desync: a reply after ${after}: ${JSON.stringify(r)}`);
    assert.equal(this.buf, '', `desync: bytes after ${after}: ${JSON.stringify(this.buf.slice(0, 200))}`);
  }

  destroy(): void { this.socket.destroy(); }
}

interface Transaction { from: { kind: AddressKind; a: string } | undefined; rcpts: Array<{ kind: AddressKind; a: string }> }

export interface DialogStats { cases: number; commands: number; messages: number; closedEarly: number; restarts: number }

export class DialogFuzz {
  private daemon: RunningDaemon | undefined;
  private acked = new Set<string>();
  private sinceStart = 0;
  /** How much of the daemon's log was looked at for program errors. */
  private logScanned = 0;
  readonly stats: DialogStats = { cases: 0, commands: 0, messages: 0, closedEarly: 0, restarts: 0 };

  /** `exactAddresses`: also require quoted, UTF-8 and A-label addresses to be stored exactly as sent (issue 21 item 1). */
  constructor(private readonly opts: { exactAddresses: boolean; restartEvery: number } = { exactAddresses: false, restartEvery: 1000 }) {}

  private async start(): Promise<RunningDaemon> {
    if (this.daemon && this.sinceStart < this.opts.restartEvery) return this.daemon;
    await this.stop();
    this.daemon = await startDaemon({ toml: '[[listen]]\naddress = "127.0.0.1:0"\ntls = "none"\n[queue]\ndefer_delivery = true\n' });
    this.stats.restarts++;
    this.sinceStart = 0;
    this.logScanned = 0;
    return this.daemon;
  }

  /** Checks the spool against every 250 given, stops the daemon and removes its folder. */
  async stop(): Promise<void> {
    const d = this.daemon;
    if (!d) return;
    this.daemon = undefined;
    try {
      this.checkSpool(d);
      this.assertAlive(d);
    } finally {
      await d.stop();
      removeDir(d.dir);
      this.acked.clear();
    }
  }

  private checkSpool(d: RunningDaemon): void {
    const stored = spoolMessages(d.dataDir).map((m) => m.id).sort();
    assert.deepEqual(stored, [...this.acked].sort(), 'the spool holds exactly the messages that got 250');
  }

  private assertAlive(d: RunningDaemon): void {
    assert.ok(d.child.exitCode === null && d.child.signalCode === null, `the daemon died (${d.child.exitCode ?? d.child.signalCode}):\n${d.logs().slice(-3000)}`);
    // a bug caught and logged rather than fatal is a failure too
    const log = d.logs();
    const bug = /^.*\b(?:TypeError|ReferenceError|RangeError|AssertionError|ERR_[A-Z_]+)\b.*$/m.exec(log.slice(this.logScanned));
    this.logScanned = Math.max(0, log.lastIndexOf('\n') + 1);
    assert.equal(bug, null, `the daemon logged a program error: ${bug?.[0]}`);
  }

  async run(groups: readonly Group[]): Promise<void> {
    const d = await this.start();
    this.sinceStart++;
    this.stats.cases++;
    const w = await Wire.open(d.ports[0]!);
    try {
      await this.dialog(d, w, groups);
    } finally {
      w.destroy();
    }
    this.assertAlive(d);
  }

  private async dialog(d: RunningDaemon, w: Wire, groups: readonly Group[]): Promise<void> {
    const greeting = await w.read('the connection');
    assert.notEqual(greeting, 'closed', 'closed before the greeting');
    if (CLOSING.has((greeting as Reply).code)) return w.expectClosed('the greeting');
    const tx: Transaction = { from: undefined, rcpts: [] };
    for (const g of groups) {
      const cmds: Command[] = [...g.commands.flatMap(lines), ...(g.data ? [{ line: 'DATA\r\n', verb: 'DATA' }] : [])];
      await w.send(cutAt(Buffer.from(cmds.map((c) => c.line).join(''), 'latin1'), g.cuts));
      const last = await this.replies(w, cmds, tx);
      if (last === 'closed') return;
      if (g.data && last?.code === 354) {
        if (await this.message(d, w, g.data, tx) === 'closed') return;
      }
    }
    await w.send([Buffer.from('QUIT\r\n')]);
    const bye = await w.read('QUIT');
    // 421 at the error limit answers whatever command comes next, QUIT too
    assert.ok(bye !== 'closed' && CLOSING.has(bye.code), `desync: QUIT got ${JSON.stringify(bye)}`);
    await w.expectClosed('QUIT');
  }

  /** One reply per command, in order; the last reply, or 'closed' if the daemon ended the session. */
  private async replies(w: Wire, cmds: readonly Command[], tx: Transaction): Promise<Reply | 'closed' | undefined> {
    let last: Reply | undefined;
    for (const cmd of cmds) {
      const r = await w.read(JSON.stringify(cmd.line.slice(0, 80)));
      if (r === 'closed') {
        assert.fail(`desync: the daemon hung up without a closing reply, before answering ${JSON.stringify(cmd.line.slice(0, 80))} (last: ${JSON.stringify(last)})`);
      }
      this.stats.commands++;
      assert.ok(r.code !== 354 || cmd.verb === 'DATA', `desync: 354 to ${JSON.stringify(cmd.line.slice(0, 80))}`);
      track(tx, cmd, r);
      last = r;
      if (CLOSING.has(r.code)) {
        this.stats.closedEarly++;
        await w.expectClosed(`${r.code} to ${JSON.stringify(cmd.line.slice(0, 80))}`);
        return 'closed';
      }
    }
    return last;
  }

  /** The body after 354, the final reply, what the client pipelined after its dot; a 250 must be on disk as the model says. */
  private async message(d: RunningDaemon, w: Wire, data: NonNullable<Group['data']>, tx: Transaction): Promise<'closed' | undefined> {
    const wire = Buffer.from(data.body + '\r\n.\r\n' + data.after.map((c) => c.line).join(''), 'latin1');
    const model = dataModel(wire);
    assert.ok(model && model.rest.toString('latin1') === data.after.map((c) => c.line).join(''), 'generator: the body ends at its own dot');
    await w.send(cutAt(wire, data.cuts));
    const r = await w.read('the end of DATA');
    assert.ok(r !== 'closed', 'desync: hung up after DATA without a reply');
    assert.ok(r.code !== 354, 'desync: 354 after the final dot');
    const id = /queued as ([0-9A-F]+)/.exec(r.text)?.[1];
    assert.ok((r.code === 250) === (id !== undefined), `a 250 names its queue id: ${r.text}`);
    if (id) this.checkStored(d, id, crlfModel(model.content), tx);
    tx.from = undefined;
    tx.rcpts = [];
    if (CLOSING.has(r.code)) { await w.expectClosed(`${r.code} after DATA`); return 'closed'; }
    return await this.replies(w, data.after, tx) === 'closed' ? 'closed' : undefined;
  }

  private checkStored(d: RunningDaemon, id: string, content: Buffer, tx: Transaction): void {
    const m = spoolMessage(d.dataDir, id);
    assert.ok(m, `250 for ${id}, but it is not a committed message in the spool`);
    this.acked.add(id);
    this.stats.messages++;
    const received = m.body.subarray(0, m.body.length - content.length).toString('latin1');
    assert.ok(m.body.subarray(m.body.length - content.length).equals(content), `stored body of ${id} differs from the reference model`);
    assert.match(received, /^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n$/, `only our Received header comes before the client's bytes in ${id}`);
    const env = m.envelope as { sender: string; recipients: Array<{ address: string }> };
    // '?' is an address the generator did not write itself (a command's own line): not checked
    const exact = (a: { kind: AddressKind; a: string }) => a.kind === 'plain' || (this.opts.exactAddresses && a.a !== '?');
    if (tx.from && exact(tx.from)) assert.equal(env.sender, tx.from.a, `sender of ${id} as sent`);
    const sent = new Set(tx.rcpts.map((r) => r.a));
    const stored = env.recipients.map((r) => r.address);
    for (const r of tx.rcpts) {
      if (exact(r)) assert.ok(stored.some((s) => s.toLowerCase() === r.a.toLowerCase()), `accepted <${r.a}> is among ${JSON.stringify(stored)} (${id})`);
    }
    if (tx.rcpts.every((r) => exact(r))) for (const s of stored) assert.ok(sent.has(s), `stored <${s}> was accepted as sent (${id})`);
  }
}

/** A command line with a LF inside is as many commands (smtp-server ends a line at LF); their addresses are unknown. */
function lines(cmd: Command): Command[] {
  const parts = cmd.line.split(/(?<=\n)/);
  if (parts.length === 1) return [cmd];
  return parts.map((line) => ({ line, verb: cmd.verb, ...(cmd.address ? { address: { kind: 'tricky' as const, a: '?' } } : {}) }));
}

/** The transaction as the replies say it is. */
function track(tx: Transaction, cmd: Command, r: Reply): void {
  if (r.code !== 250) return;
  if (cmd.verb === 'EHLO' || cmd.verb === 'HELO' || cmd.verb === 'RSET') { tx.from = undefined; tx.rcpts = []; }
  if (cmd.verb === 'MAIL') {
    const nul = /^MAIL FROM: ?<>/i.test(cmd.line);
    tx.from = cmd.address ?? (nul ? { kind: 'plain', a: '' } : { kind: 'tricky', a: '?' });
    tx.rcpts = [];
  }
  if (cmd.verb === 'RCPT') tx.rcpts.push(cmd.address ?? { kind: 'tricky', a: '?' });
}
