// The counting sink for the relay bench: a bare smtp-server child (no disk)
// that answers 250 to everything and reports, per message, the number in its
// top-level "X-Bench-Id:" header and the moment its final dot arrived. Times
// are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock every process
// on the machine shares, so the parent can subtract its own 250 times.
// Reports go to the parent over IPC in batches; the parent's messages are not
// read. Messages without the header (e.g. a bounce) are counted as "other".
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** What the sink sends to its parent. */
export type SinkReport =
  | { readonly kind: 'listening'; readonly port: number }
  | { readonly kind: 'arrivals'; readonly ids: number[]; readonly at: number[]; readonly other: number; readonly connections: number };

const HEADER = /^X-Bench-Id:[ \t]*(\d+)[ \t]*$/im;
/** The header block is searched in at most this many bytes: Received lines come first. */
const MAX_HEAD = 64 * 1024;
const REPORT_EVERY_MS = 25;

const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

let pending: { ids: number[]; at: number[]; other: number } = { ids: [], at: [], other: 0 };
let connections = 0;

function send(report: SinkReport): void {
  process.send?.(report);
}

function flush(): void {
  if (!pending.ids.length && !pending.other) return;
  send({ kind: 'arrivals', ...pending, connections });
  pending = { ids: [], at: [], other: 0 };
}

/** The id in the message's own header block (before the first empty line), or undefined. */
function benchId(head: string): number | undefined {
  const end = head.indexOf('\r\n\r\n');
  const m = HEADER.exec(end >= 0 ? head.slice(0, end) : head);
  return m ? Number(m[1]) : undefined;
}

const server = new SMTPServer({
  name: 'sink.test',
  banner: 'bench sink',
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  size: 50 * 1024 * 1024,
  logger: false,
  onConnect(_session, cb) { connections++; cb(); },
  onData(stream, _session, cb) {
    let head = '';
    let done = false;
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      head += chunk.toString('latin1', 0, Math.min(chunk.length, MAX_HEAD - head.length));
      done = head.includes('\r\n\r\n') || head.length >= MAX_HEAD;
    });
    stream.on('end', () => {
      const at = monoMs();
      const id = benchId(head);
      if (id === undefined) pending.other++;
      else { pending.ids.push(id); pending.at.push(at); }
      cb(null, '2.0.0 Ok: queued by sink');
    });
  },
});

server.on('error', (e: Error) => process.stderr.write(`sink: ${e.message}\n`));
server.listen(0, '127.0.0.1', () => {
  send({ kind: 'listening', port: (server.server.address() as AddressInfo).port });
});
setInterval(flush, REPORT_EVERY_MS);
const stop = () => { flush(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
