// `smarthost route test`: the route table and one decision per recipient,
// with the rule that made it, for each kind of match (first match wins).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { routeReport } from './route.js';

function config(text: string): Config {
  const { config: c, problems } = parseConfig(`hostname = "relay.test"\ndata_dir = "/var/lib/smarthost"\n${text}`, '/etc/smarthost/smarthost.toml');
  assert.deepEqual(problems, []);
  return c!;
}

const WITH_RELAY = config(`
[local]
domains = ["relay.test", "localhost"]
maildir = "/var/mail/{user}"
[[route]]
name = "corp"
domains = ["corp.example.com", ".corp.example.com"]
url = ["smtp://10.0.0.5:25", "smtp://10.0.0.6:25"]
tls = "none"
[[route]]
name = "alerts"
senders = ["@alerts.example.org", "cron@host.example.org"]
url = "smtps://smtp.alerts.example:465"
fallback_urls = ["smtp://backup.example:587"]
username = "monitor"
password_env = "ALERTS_PW"
[[route]]
name = "late"
domains = ["corp.example.com", "late.example.com"]
url = "smtp://10.9.9.9:25"
[relay]
url = "smtp://smtp.mailgun.org:587"
username = "postmaster@mg.example.com"
password_env = "RELAY_PW"
`);

const WITHOUT_RELAY = config(`
[mx]
tls = "may"
`);

/** The one decision line for `to`. */
function decide(c: Config, from: string, to: string): string {
  const line = routeReport(c, from, [to]).split('\n').find((l) => l.startsWith(`  to <${to}>: `));
  assert.ok(line, `no decision line for ${to}`);
  return line.slice(`  to <${to}>: `.length);
}

describe('smarthost route test', () => {
  const cases: Array<{ name: string; c: Config; from: string; to: string; want: RegExp }> = [
    { name: 'local domain', c: WITH_RELAY, from: 'alice@example.org', to: 'root@relay.test',
      want: /^local \(maildir \/var\/mail\/\{user\}\) because relay\.test is in \[local\] domains \("relay\.test"\)$/ },
    { name: 'a bare name is local', c: WITH_RELAY, from: 'alice@example.org', to: 'root', want: /^local \(maildir .*\) because a bare name/ },
    { name: 'route by recipient domain', c: WITH_RELAY, from: 'alice@example.org', to: 'bob@corp.example.com',
      want: /^route corp -> smtp:\/\/10\.0\.0\.5:25, smtp:\/\/10\.0\.0\.6:25 because recipient domain corp\.example\.com matches "corp\.example\.com" in route corp domains$/ },
    { name: 'route by subdomain ".example.com"', c: WITH_RELAY, from: 'alice@example.org', to: 'bob@eu.corp.example.com',
      want: /^route corp -> .* because recipient domain eu\.corp\.example\.com matches "\.corp\.example\.com" in route corp domains$/ },
    { name: 'route by sender "@domain"', c: WITH_RELAY, from: 'nagios@alerts.example.org', to: 'ops@example.net',
      want: /^route alerts -> smtps:\/\/smtp\.alerts\.example:465 \(fallback smtp:\/\/backup\.example:587\) because sender nagios@alerts\.example\.org matches "@alerts\.example\.org" in route alerts senders$/ },
    { name: 'route by exact sender address', c: WITH_RELAY, from: 'Cron@Host.Example.org', to: 'ops@example.net',
      want: /^route alerts -> .* because sender Cron@Host\.Example\.org matches "cron@host\.example\.org" in route alerts senders$/ },
    { name: 'a sender in another domain of the same host is not matched', c: WITH_RELAY, from: 'other@host.example.org', to: 'ops@example.net', want: /^relay -> / },
    { name: 'relay takes the rest', c: WITH_RELAY, from: 'alice@example.org', to: 'bob@example.net',
      want: /^relay -> smtp:\/\/smtp\.mailgun\.org:587 because no \[local\] domain or \[\[route\]\] matches; \[relay\] takes the rest$/ },
    { name: 'mx without a relay', c: WITHOUT_RELAY, from: 'alice@example.org', to: 'bob@example.net',
      want: /^mx example\.net because no \[local\] domain, \[\[route\]\] or \[relay\] matches/ },
    { name: 'first match wins: corp is listed before late', c: WITH_RELAY, from: 'alice@example.org', to: 'x@corp.example.com', want: /^route corp -> / },
    { name: 'first match wins: a recipient route listed before a sender route', c: WITH_RELAY, from: 'cron@host.example.org', to: 'x@corp.example.com', want: /^route corp -> / },
    { name: 'a later route still matches what earlier ones do not', c: WITH_RELAY, from: 'alice@example.org', to: 'x@late.example.com', want: /^route late -> smtp:\/\/10\.9\.9\.9:25 because/ },
    { name: 'the null sender matches no sender route', c: WITH_RELAY, from: '<>', to: 'ops@example.net', want: /^relay -> / },
  ];
  for (const t of cases) it(t.name, () => assert.match(decide(t.c, t.from, t.to), t.want));

  it('prints the table in the order it is tried, with urls, tls and user', () => {
    const lines = routeReport(WITH_RELAY, 'a@b.c', ['x@y.z']).split('\n');
    assert.match(lines[0]!, /^route table of \/etc\/smarthost\/smarthost\.toml \(first match wins, per recipient\):$/);
    assert.match(lines[1]!, /^ {2}1\. local +domains relay\.test, localhost +-> maildir \/var\/mail\/\{user\}$/);
    assert.match(lines[2]!, /^ {2}2\. route corp +domains corp\.example\.com, \.corp\.example\.com +-> smtp:\/\/10\.0\.0\.5:25, smtp:\/\/10\.0\.0\.6:25 tls=none user=-$/);
    assert.match(lines[3]!, /^ {2}3\. route alerts +senders @alerts\.example\.org, cron@host\.example\.org +-> smtps:\/\/smtp\.alerts\.example:465 \(fallback smtp:\/\/backup\.example:587\) tls=verify user=monitor$/);
    assert.match(lines[5]!, /^ {2}5\. relay +everything else +-> smtp:\/\/smtp\.mailgun\.org:587 tls=verify user=postmaster@mg\.example\.com$/);
    assert.match(routeReport(WITHOUT_RELAY, 'a@b.c', ['x@y.z']), /\n {2}2\. mx +everything else +-> MX hosts of the recipient domain, tls=may\n/);
  });
});
