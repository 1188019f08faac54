// The one file that wires every folder together. createDaemon() builds the
// whole relay from a Config and recovers the spool, but holds no ports;
// listen() binds them (fastify's build-then-listen), so tests can build many.
import type { AddressInfo, Server } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import { AuthThrottle } from './auth/throttle.js';
import { UserStore } from './auth/users-file.js';
import type { Config } from './config/types.js';
import type { Envelope } from './mail/envelope.js';
import type { MailLog } from './maillog/maillog.js';
import { FsSpool } from './queue/fs-spool.js';
import { storeMessage } from './queue/spool.js';
import { ConnectionLimits } from './smtpd/connection-limits.js';
import { createListener } from './smtpd/listener.js';
import { closeControl, listenControl } from './control/server.js';
import type { ControlReply, ControlRequest } from './control/protocol.js';
import { rewriteOutgoing, type SenderRules } from './cleanup/sender-rewrite.js';
import { LocalTransport } from './local/local.js';
import { LocalRecipients } from './local/recipients.js';
import { QueueManager } from './qmgr/qmgr.js';
import { resolverFor } from './route/mx.js';
import { SmtpTransport } from './smtp/transport.js';
import { loadServerCert, type CertPair } from './tls/server-cert.js';

export const VERSION = '0.1.0';

export interface BoundListener { readonly address: string; readonly host: string; readonly port: number; readonly tls: string; readonly auth: string }

export interface Daemon {
  readonly spool: FsSpool;
  readonly qmgr: QueueManager;
  listen(): Promise<BoundListener[]>;
  close(): Promise<void>;
}

export async function createDaemon(config: Config, opts: { log: MailLog; onQueued?: (e: Envelope) => void }): Promise<Daemon> {
  const { log } = opts;
  const spool = new FsSpool(config.dataDir);
  const report = await spool.recover();
  log.spoolRecovered(report.messages, report.discarded, report.corrupt);

  const needsCert = config.listen.some((l) => l.tls !== 'none');
  let cert: CertPair | undefined;
  if (needsCert) cert = await loadServerCert(config.tls, config.dataDir, config.hostname, (m) => log.warning(m));

  const smtp = new SmtpTransport({
    ehloName: config.hostname, mx: config.mx, resolver: resolverFor(config.mx.nameservers),
    deadMs: Math.min(60_000, config.queue.retryMinMs),
  });
  const recipients = LocalRecipients.from(config.local, (m) => log.warning(m, 'local'));
  const local = new LocalTransport({
    recipients, maildir: config.local.maildir, hostname: config.hostname, chown: process.getuid?.() === 0,
    resubmit: async (sender, to, message) => {
      const e = await storeMessage(spool, {
        sender, recipients: to.map((address) => ({ address })), arrived: new Date().toISOString(), body: '8BITMIME',
        client: { address: '127.0.0.1', hostname: 'localhost', helo: config.hostname, protocol: 'local' },
      }, message);
      log.queued(e.id, e.sender, e.size, e.recipients.length);
      onQueued(e);
      return e.id;
    },
  });
  // Postfix smtp_generic_maps + myorigin: only mail that leaves the host is rewritten
  const rules: SenderRules = { map: config.rewrite.senders, hostname: config.hostname };
  const qmgr = new QueueManager({
    spool, log, queue: config.queue, hostname: config.hostname,
    routes: { localDomains: config.local.domains, routes: config.routes, ...(config.relay ? { relay: config.relay } : {}) },
    transports: {
      deliver: async (dest, msg) => dest.kind === 'local' ? local.deliver(msg) : smtp.deliver(dest, await rewriteOutgoing(msg, rules)),
      forgetDead: () => smtp.forgetDead(),
    },
  });
  const onQueued = (e: Envelope) => { opts.onQueued?.(e); qmgr.enqueue(e); };

  const deps = {
    hostname: config.hostname, limits: config.limits, localDomains: config.local.domains,
    localExists: (rcpt: string) => recipients.exists(rcpt),
    spool, log, users: new UserStore(config.auth.usersFile), throttle: new AuthThrottle(config.limits.authFailures),
    connections: new ConnectionLimits(config.limits.connections, config.limits.connectionsPerIp),
    minTlsVersion: config.tls.minVersion,
    ...(cert ? { cert } : {}), onQueued, inflow: () => qmgr.inflow(),
  };
  const servers: Array<{ server: SMTPServer; listen: Config['listen'][number] }> =
    config.listen.map((l) => ({ server: createListener(l, deps), listen: l }));

  /** Mail `smarthost sendmail` wrote into the spool while we run (Postfix pickup). */
  async function pickup(ids: readonly string[] | 'ALL'): Promise<ControlReply> {
    const done: string[] = [];
    const missing: string[] = [];
    for (const id of ids === 'ALL' ? [] : ids) {
      const entry = await spool.get(id);
      if (!entry) { missing.push(id); continue; }
      log.pickup(id, entry.envelope.client.uid, entry.envelope.sender);
      log.queued(id, entry.envelope.sender, entry.envelope.size, entry.envelope.recipients.length);
      onQueued(entry.envelope);
      done.push(id);
    }
    return { ok: true, done, missing };
  }

  let control: Server | undefined;
  return {
    spool,
    qmgr,
    async listen() {
      control = await listenControl(config.dataDir, (req) => req.op === 'pickup' ? pickup(req.ids) : controlAction(qmgr, req));
      await qmgr.start();
      const bound: BoundListener[] = [];
      for (const { server, listen } of servers) {
        await new Promise<void>((resolve, reject) => {
          // smtp-server re-emits its net.Server's errors (EADDRINUSE, EACCES) as its own
          const onError = (e: Error) => reject(e);
          server.once('error', onError);
          server.listen(listen.port, listen.host, () => { server.off('error', onError); resolve(); });
        });
        server.on('error', (e: Error) => log.warning(`${listen.address}: ${e.message}`, 'smtpd'));
        const a = server.server.address() as AddressInfo;
        const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
        log.listening(address, listen.tls, listen.auth);
        bound.push({ address, host: a.address, port: a.port, tls: listen.tls, auth: listen.auth });
      }
      return bound;
    },
    async close() {
      // stop accepting; idle sessions get 421 on their next command, a DATA in
      // progress may finish; smtp-server closes what is left after closeTimeout
      await Promise.all(servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))));
      if (control) await closeControl(control);
      await qmgr.close();
      await smtp.close();
      spool.close();
    },
  };
}

async function controlAction(qmgr: QueueManager, req: ControlRequest): Promise<ControlReply> {
  const r = req.op === 'flush' ? qmgr.flush(req.ids)
    : req.op === 'delete' ? await qmgr.delete(req.ids)
    : await qmgr.hold(req.ids, req.op === 'hold');
  return { ok: true, ...r };
}
