// The baseline for the intake bench: a bare smtp-server (the library
// smarthost is built on) in its own process, no policy, no logging, no disk.
// onData drains the stream and answers 250, so smarthost/baseline ratios show
// what durability, cleanup and logging cost on top of the SMTP library.
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

const server = new SMTPServer({
  name: 'baseline.test',
  banner: 'baseline',
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  size: 25 * 1024 * 1024,
  logger: false,
  onData(stream, _session, cb) {
    stream.on('data', () => undefined);
    stream.on('end', () => cb(null, '2.0.0 Ok: queued as BASELINE'));
  },
});

server.on('error', (e: Error) => process.stderr.write(`baseline: ${e.message}\n`));
server.listen(0, '127.0.0.1', () => {
  const a = server.server.address() as AddressInfo;
  process.stdout.write(`listening on 127.0.0.1:${a.port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
