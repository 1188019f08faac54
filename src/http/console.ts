// The web console: three static files (console/ in the package), read once when
// the listener is built and served from memory. Nothing is loaded from anywhere
// else: the Content-Security-Policy allows only this origin, and no framing.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const FILES: Record<string, string> = {
  '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/** console/ beside dist/ (running the build) or beside src/ (the sources). */
function consoleDir(): string {
  for (const rel of ['../../../console/', '../../console/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error('the console files (console/index.html) are missing from the installation');
}

export function serveConsole(app: FastifyInstance): void {
  const dir = consoleDir();
  const body = new Map(Object.values(FILES).map((f) => [f, fs.readFileSync(dir + f)]));
  for (const [route, file] of Object.entries(FILES)) {
    app.get(route, { schema: { hide: true } }, async (_req, reply) => {
      reply.header('Content-Security-Policy', CSP).header('X-Frame-Options', 'DENY');
      return reply.type(TYPES[file.split('.').pop()!]!).send(body.get(file));
    });
  }
}
