// A bare TCP peer on 127.0.0.1 for the cases no SMTP library would produce (silence, a
// multi-line reply, TLS where SMTP is expected): the test writes the bytes itself.
import net from 'node:net';

export interface RawServer { readonly port: number; close(): Promise<void> }

export async function startRawServer(onConnection: (socket: net.Socket) => void): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => undefined); onConnection(s); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
