// [log] file rotation and reconfiguration (issue 20), at the unit level: fileSink.reopen() after a
// rename, MailLog.reconfigure() switching format and sink, the AUTH block lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../test/helpers/wait.js';
import { fileSink, MailLog, type LogSink } from './maillog.js';

/** What `file` holds once it holds at least as much as `want`: the streams write asynchronously. */
async function holds(file: string, want: string): Promise<string> {
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  await waitFor(() => read().length >= want.length, () => `${want.length} bytes in ${file}, it holds ${read().length}`);
  return read();
}

test('fileSink.reopen(): lines before it stay in the renamed file, later ones go to a new file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-log-'));
  try {
    const file = path.join(dir, 'maillog');
    const sink = fileSink(file);
    for (let i = 0; i < 100; i++) sink.write(`line ${i}\n`);
    // the stream opens the file asynchronously: rotate a file that is open, as logrotate does
    const early = Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join('');
    assert.equal(await holds(file, early), early);
    fs.renameSync(file, `${file}.1`);
    for (let i = 100; i < 200; i++) sink.write(`line ${i}\n`); // after the rename, before the signal: still the old file
    sink.reopen!();
    for (let i = 200; i < 300; i++) sink.write(`line ${i}\n`);
    sink.close!();
    const before = Array.from({ length: 200 }, (_, i) => `line ${i}\n`).join('');
    const after = Array.from({ length: 100 }, (_, i) => `line ${i + 200}\n`).join('');
    assert.equal(await holds(`${file}.1`, before), before);
    assert.equal(await holds(file, after), after);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('MailLog.reconfigure(): new format, host and sink from the next line on; the old sink is closed', () => {
  const a: string[] = [];
  const b: string[] = [];
  let closed = false;
  const first: LogSink = { write: (l) => { a.push(l); }, close: () => { closed = true; } };
  const log = new MailLog({ format: 'postfix', hostname: 'relay.example.com', sink: first });
  log.logMoved('/var/log/smarthost/maillog.json', 'json');
  log.reconfigure({ format: 'json', hostname: 'mx.example.org', sink: { write: (l) => { b.push(l); } } });
  log.stopped();
  assert.match(a[0]!, /relay smarthost\/master\[\d+\]: log continues in \/var\/log\/smarthost\/maillog\.json \(format json\)\n$/);
  assert.equal(closed, true);
  assert.equal(JSON.parse(b[0]!).host, 'mx');
  assert.equal(JSON.parse(b[0]!).event, 'stopped');
});

test('the AUTH block lines say for how long and how to lift it', () => {
  const lines: string[] = [];
  const log = new MailLog({ format: 'postfix', hostname: 'relay.example.com', sink: { write: (l) => { lines.push(l); } } });
  const p = { hostname: 'localhost', address: '127.0.0.1' };
  log.authBlocked(p, 600_000, { count: 5, window: '10m' }, true);
  log.authBlocked(p, 8.5 * 60_000, { count: 5, window: '10m' }, false);
  log.authUnblocked(['127.0.0.1']);
  assert.match(lines[0]!, /: warning: localhost\[127\.0\.0\.1\]: 5 failed authentication attempts within 10m: AUTH from 127\.0\.0\.1 is refused for 10 minutes \(smarthost auth unblock 127\.0\.0\.1 lifts it\)\n$/);
  assert.match(lines[1]!, /: warning: localhost\[127\.0\.0\.1\]: AUTH refused, too many failed authentication attempts; try again in 9 minutes/);
  assert.match(lines[2]!, /smarthost\/smtpd\[\d+\]: AUTH block lifted for 127\.0\.0\.1 \(smarthost auth unblock\)\n$/);
});
