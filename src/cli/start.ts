// `smarthost start`: run in the foreground until SIGTERM/SIGINT.
import { fileSink, MailLog } from '../maillog/maillog.js';
import { createDaemon, VERSION } from '../daemon.js';
import { EMBEDDED_DEFAULT } from '../config/load.js';
import { configOrReport, EXIT } from './common.js';

export const help = `usage: smarthost start [-c FILE] [--log-format postfix|json]
Runs the relay in the foreground. Logs go to stdout, or to [log] file.
SIGTERM or SIGINT stop it: no new sessions, a message in transfer may finish.`;

export async function run(opts: { config?: string; logFormat?: string }): Promise<number> {
  const config = configOrReport(opts.config);
  if (!config) {
    process.stderr.write('smarthost: not starting; fix the problems above (run `smarthost check` to see them again)\n');
    return EXIT.CONFIG;
  }
  const format = opts.logFormat === 'json' ? 'json' : opts.logFormat === 'postfix' ? 'postfix' : config.log.format;
  const log = new MailLog({ format, hostname: config.hostname, ...(config.log.file ? { sink: fileSink(config.log.file) } : {}) });
  log.started(VERSION, config.source);
  let daemon;
  try {
    daemon = await createDaemon(config, { log });
    const bound = await daemon.listen();
    if (config.source === EMBEDDED_DEFAULT) {
      process.stderr.write([
        `smarthost: no smarthost.toml found, running on the embedded default:`,
        ...bound.map((b) => `  accepting mail on ${b.address} (loopback clients may relay)`),
        `  queue and mailboxes in ${config.dataDir}`,
        `To send through your provider, create ./smarthost.toml with, for example:`,
        `  [relay]`,
        `  url = "smtp://smtp.example.com:587"`,
        `  username = "you@example.com"`,
        `  password_file = "/etc/smarthost/relay.secret"`,
        `then run \`smarthost check\`. See README.md.`, ''].join('\n'));
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'EADDRINUSE' ? ' (another program already listens there; stop it or pick another address in [[listen]])'
      : err.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : '';
    log.fatal(`${err.message}${hint}`);
    await daemon?.close();
    return EXIT.CANTCREAT;
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => { log.stopping(`received ${sig}`); resolve(); };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => log.warning('SIGHUP: reloading the configuration is not implemented yet; restart smarthost to apply changes'));
  });
  await daemon.close();
  log.stopped();
  return EXIT.OK;
}
