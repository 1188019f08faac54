// The API listener's own parts, built from what the daemon hands over: the
// daemon (daemon.ts) stays the one place that connects folders; this file only
// assembles http/'s pieces (tokens, idempotency, history, probe) around them.
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Envelope } from '../mail/envelope.js';
import type { MailLog } from '../maillog/maillog.js';
import { probe } from '../probe/steps.js';
import { hasSeveralUrls, probeRoute } from '../probe/url-walk.js';
import { chooseTarget, probeSender } from '../probe/target.js';
import type { Spool } from '../queue/spool.js';
import { History } from './events.js';
import { IdempotencyStore } from './idempotency.js';
import type { CheckFinding, Suppressions } from './ops.js';
import type { QueueOp } from './queue-routes.js';
import { listenHttp, type HttpListener } from './http-server.js';
import { apiSubmit } from './submit.js';
import { TokenStore } from './tokens.js';

export interface ApiParts {
  readonly spool: Spool;
  readonly log: MailLog;
  readonly version: string;
  /** The config in force now (a reload changes it). */
  readonly config: () => Config;
  readonly cert?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  readonly localExists: (rcpt: string) => boolean | 'unavailable';
  readonly queued: (e: Envelope) => void;
  readonly act: (op: QueueOp, ids: readonly string[] | 'ALL') => Promise<{ done: string[]; missing: string[] }>;
  readonly queueSize: () => number;
  readonly check?: (c: Config) => Promise<readonly CheckFinding[]>;
  readonly suppression: Suppressions;
  readonly observe: (route: string, method: string, status: number) => void;
}

export interface ApiServer extends HttpListener { readonly settings: string }

export async function serveApi(p: ApiParts): Promise<ApiServer | undefined> {
  const c = p.config();
  if (!c.http) return undefined;
  const history = new History(p.log, p.queueSize);
  const idempotency = new IdempotencyStore(path.join(c.dataDir, 'api-idempotency'));
  const submit = apiSubmit({
    spool: p.spool, log: p.log, queued: p.queued, localExists: (r) => p.localExists(r), tls: c.http.tls,
    get limits() { return p.config().limits; }, get hostname() { return p.config().hostname; },
    get showAuthUser() { return p.config().auth.authenticatedHeader; }, get localDomains() { return p.config().local.domains; },
  });
  const listener = await listenHttp({
    observe: p.observe, config: c.http, ...(p.cert ? { cert: p.cert } : {}), tokens: new TokenStore(c.http.tokensFile), log: p.log, version: p.version, stats: history,
    queue: { list: () => p.spool.list(), get: (id) => p.spool.get(id), open: (id) => p.spool.open(id), act: p.act },
    submit: { submit, idempotency, get limits() { return p.config().limits; } },
    ops: {
      routes: () => { const x = p.config(); return [...(x.relay ? ['relay'] : []), ...x.routes.map((r) => r.name)]; },
      probe: async (route) => {
        const x = p.config();
        const choice = chooseTarget(x, route, undefined);
        if ('usage' in choice) return choice;
        const opts = { ehloName: x.hostname, ...probeSender(x, undefined), timeoutMs: 10_000 };
        return { report: hasSeveralUrls(choice.target.upstream) ? await probeRoute(choice.target, opts) : await probe(choice.target, opts) };
      },
      check: async () => ({ source: p.config().source, findings: p.check ? await p.check(p.config()) : [] }),
      suppression: p.suppression,
    },
  });
  p.log.httpListening(listener.url);
  return {
    ...listener, settings: JSON.stringify(c.http),
    close: async () => { history.close(); idempotency.close(); await listener.close(); },
  };
}
