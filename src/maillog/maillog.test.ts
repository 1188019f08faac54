import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MailLog, type Delivery } from './maillog.js';

const d: Delivery = {
  to: 'bob@example.net', relay: 'smtp.mailgun.org[34.1.2.3]:587', delay: '0.95', delays: ['0.35', '0.11', '0.28', '0.21'],
  dsn: '2.0.0', status: 'sent', reason: '250 Great success',
};

function capture(format: 'postfix' | 'json'): { log: MailLog; lines: string[] } {
  const lines: string[] = [];
  return { log: new MailLog({ format, hostname: 'relay.example.com', sink: { write: (l) => { lines.push(l); } } }), lines };
}

test('a delivery line has exactly the Postfix shape', () => {
  const { log, lines } = capture('postfix');
  log.delivery('7F3A9C21', 'smtp', d);
  assert.match(lines[0]!, /^\w{3} [ \d]\d \d\d:\d\d:\d\d relay smarthost\/smtp\[\d+\]: 7F3A9C21: to=<bob@example\.net>, relay=smtp\.mailgun\.org\[34\.1\.2\.3\]:587, delay=0\.95, delays=0\.35\/0\.11\/0\.28\/0\.21, dsn=2\.0\.0, status=sent \(250 Great success\)\n$/);
});

test('the JSON form carries the same fields, numbers as numbers', () => {
  const { log, lines } = capture('json');
  log.delivery('7F3A9C21', 'smtp', d);
  const j = JSON.parse(lines[0]!);
  assert.equal(j.program, 'smarthost/smtp');
  assert.equal(j.queue_id, '7F3A9C21');
  assert.equal(j.event, 'delivery');
  assert.deepEqual([j.to, j.relay, j.delay, j.delays, j.dsn, j.status, j.reason],
    ['bob@example.net', 'smtp.mailgun.org[34.1.2.3]:587', 0.95, [0.35, 0.11, 0.28, 0.21], '2.0.0', 'sent', '250 Great success']);
});

test('bounce and expiry lines', () => {
  const { log, lines } = capture('postfix');
  log.notice('7F3A9C21', 'non-delivery', '8A1B2C3D');
  log.expired('7F3A9C21', 'alice@example.com');
  assert.match(lines[0]!, /smarthost\/bounce\[\d+\]: 7F3A9C21: sender non-delivery notification: 8A1B2C3D\n$/);
  assert.match(lines[1]!, /smarthost\/qmgr\[\d+\]: 7F3A9C21: from=<alice@example\.com>, status=expired, returned to sender\n$/);
});

test('MTA-STS lines: a fetched policy is news, the rest are warnings; a refusal is left to the deferral line', () => {
  const { log, lines } = capture('postfix');
  log.mtaSts({ kind: 'fetch', domain: 'example.net', outcome: 'ok', text: 'MTA-STS policy of example.net (mode enforce, id 1, mx mx.example.net) fetched' });
  log.mtaSts({ kind: 'fetch', domain: 'example.net', outcome: 'http_error', text: 'MTA-STS policy of example.net (id 2) not used: 404' });
  log.mtaSts({ kind: 'testing', domain: 'example.org', why: 'tls', text: 'MTA-STS policy of example.org (mode testing, id 7, mx m.example.org): would refuse' });
  log.mtaSts({ kind: 'refused', domain: 'example.net', why: 'mx', text: 'in the deferral' });
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /smarthost\/smtp\[\d+\]: MTA-STS policy of example\.net \(mode enforce, id 1, mx mx\.example\.net\) fetched\n$/);
  assert.match(lines[1]!, /smarthost\/smtp\[\d+\]: warning: MTA-STS policy of example\.net \(id 2\) not used: 404\n$/);
  assert.match(lines[2]!, /smarthost\/smtp\[\d+\]: warning: MTA-STS policy of example\.org .*would refuse\n$/);
  const json = capture('json');
  json.log.mtaSts({ kind: 'fetch', domain: 'example.net', outcome: 'invalid', text: 'x' });
  const j = JSON.parse(json.lines[0]!);
  assert.deepEqual([j.event, j.kind, j.domain, j.outcome, j.message], ['mta_sts', 'fetch', 'example.net', 'invalid', 'warning: x']);
});
