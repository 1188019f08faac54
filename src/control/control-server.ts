// The daemon side of the control socket. A socket file left by a daemon that
// was killed is removed; one that still answers means another smarthost runs
// on this data_dir, which start refuses (two queue managers would deliver
// every message twice).
import fs from 'node:fs';
import net from 'node:net';
import { controlSocketPath, isControlRequest, type ControlReply, type ControlRequest } from './protocol.js';

export type ControlHandler = (req: ControlRequest) => Promise<ControlReply>;

export class ControlInUseError extends Error {}

function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function listenControl(dataDir: string, handle: ControlHandler): Promise<net.Server> {
  const file = controlSocketPath(dataDir);
  if (fs.existsSync(file)) {
    if (await answers(file)) throw new ControlInUseError(`another smarthost is running on data_dir ${dataDir} (its control socket ${file} answers); stop it first`);
    fs.unlinkSync(file);
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) { if (buf.length > 1_000_000) sock.destroy(); return; }
      let req: unknown;
      try { req = JSON.parse(buf.slice(0, nl)); } catch { req = undefined; }
      const reply: Promise<ControlReply> = isControlRequest(req) ? handle(req).catch((e: Error) => ({ ok: false, error: e.message })) : Promise.resolve({ ok: false, error: 'malformed control request' });
      void reply.then((r) => sock.end(JSON.stringify(r) + '\n'));
    });
  });
  const old = process.umask(0o177); // the socket file is created 0600
  try {
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(file, () => { server.off('error', reject); resolve(); }); });
  } finally {
    process.umask(old);
  }
  return server;
}

export function closeControl(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
