// The CLI side of the control socket. `undefined` means no daemon is running
// (no socket, or nobody listening), so the caller can act on the files itself.
import net from 'node:net';
import { controlSocketPath, type ControlReply, type ControlRequest } from './protocol.js';

export function sendControl(dataDir: string, req: ControlRequest, timeoutMs = 30_000): Promise<ControlReply | undefined> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(controlSocketPath(dataDir));
    let buf = '';
    let connected = false;
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => { sock.destroy(); reject(new Error(`the daemon did not answer within ${timeoutMs / 1000}s`)); });
    sock.once('connect', () => { connected = true; sock.write(JSON.stringify(req) + '\n'); });
    sock.on('data', (d: string) => { buf += d; });
    sock.on('end', () => {
      try { resolve(JSON.parse(buf) as ControlReply); } catch { reject(new Error(`the daemon sent a malformed reply: ${buf.slice(0, 200)}`)); }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (!connected && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(e);
    });
  });
}
