// Ports for tests that need one nothing listens on (a refused connection) or one to give a
// server that binds it itself (Postfix, PostgreSQL): bound to 127.0.0.1:0, noted, closed.
import net from 'node:net';

/** Binds n sockets at once (so the ports differ), notes the ports, closes them. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** One port nothing listens on now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}
