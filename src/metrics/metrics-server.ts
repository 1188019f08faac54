// The Prometheus scrape listener: GET or HEAD /metrics answers the rendered
// page, every other path 404. Nothing here may take the daemon down: a failing
// render answers 500, and request and socket errors stay inside this server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsConfig } from '../config/types.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsListener {
  readonly server: http.Server;
  /** The bound host, e.g. "127.0.0.1" or "::1". */
  readonly address: string;
  /** The bound port; the real one when the config asked for port 0. */
  readonly port: number;
  /** Stops listening and drops open keep-alive connections, so shutdown never waits on a scraper. */
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Told about a failing render or server error; the default ignores them. */
  readonly onError?: (err: Error) => void;
}

function answer(res: http.ServerResponse, head: boolean, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

function handler(render: () => string, onError: (err: Error) => void): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const head = req.method === 'HEAD';
    if (path !== '/metrics') return answer(res, head, 404, 'Not Found\n');
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return answer(res, false, 405, 'Method Not Allowed\n');
    }
    let body: string;
    try {
      body = render();
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
      return answer(res, head, 500, 'metrics unavailable\n');
    }
    answer(res, head, 200, body, CONTENT_TYPE);
  };
}

/** Binds cfg.host:cfg.port; rejects if that fails (e.g. EADDRINUSE), so start can refuse loudly. */
export function listenMetrics(cfg: MetricsConfig, render: () => string, opts: MetricsServerOptions = {}): Promise<MetricsListener> {
  const onError = opts.onError ?? (() => {});
  const server = http.createServer(handler(render, onError));
  // a malformed request only costs that client its connection
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      server.on('error', onError);
      const port = (server.address() as AddressInfo).port;
      resolve({ server, address: cfg.host, port, close: () => closeServer(server) });
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
