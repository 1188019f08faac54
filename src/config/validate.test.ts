// parseConfig: smarthost.toml text -> a frozen Config with typed values, or
// every problem, each naming the file, line, key path and the fix. The SPEC's
// own example is kept verbatim in test/configs/spec-example.toml.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from './load.js';
import type { Config, Problem } from './types.js';

// dist/src/config/ -> the project root, where test/configs/ lives (fixtures are not compiled)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FILE = '/etc/smarthost/smarthost.toml';

function valid(text: string, file = FILE): Config {
  const { config, problems } = parseConfig(text, file);
  assert.deepEqual(problems, [], 'expected a valid config');
  assert.ok(config);
  return config;
}

function invalid(text: string, file = FILE): readonly Problem[] {
  const { config, problems } = parseConfig(text, file);
  assert.equal(config, undefined, 'an invalid config must not yield a Config');
  assert.ok(problems.length > 0, 'expected problems');
  for (const p of problems) {
    assert.equal(p.file, file);
    assert.equal(typeof p.path, 'string');
    assert.ok(p.message.length > 0 && p.fix.length > 0, `message and fix: ${JSON.stringify(p)}`);
  }
  return problems;
}

/** The one problem at `path` (fails if there is none or several). */
function problemAt(problems: readonly Problem[], p: string): Problem {
  const found = problems.filter((x) => x.path === p);
  assert.equal(found.length, 1, `one problem at ${p} in ${JSON.stringify(problems, null, 2)}`);
  return found[0]!;
}

describe('parseConfig: the SPEC example', () => {
  const text = fs.readFileSync(path.join(ROOT, 'test/configs/spec-example.toml'), 'utf8');

  it('is valid and yields typed values', () => {
    const c = valid(text, '/etc/smarthost/smarthost.toml');
    assert.equal(c.source, '/etc/smarthost/smarthost.toml');
    assert.equal(c.hostname, 'relay.example.com');
    assert.equal(c.dataDir, '/var/lib/smarthost');

    assert.equal(c.listen.length, 2);
    const [local, remote] = c.listen;
    assert.deepEqual({ ...local!, trustedNetworks: local!.trustedNetworks.map((n) => n.text) }, {
      address: '127.0.0.1:25', host: '127.0.0.1', port: 25, tls: 'none', auth: 'none',
      allowPlaintextAuth: false, pregreetMs: 0, trustedNetworks: ['127.0.0.0/8', '::1/128'],
    });
    const [v4, v6] = local!.trustedNetworks;
    assert.equal(v4!.range[0].kind(), 'ipv4');
    assert.equal(v4!.range[0].toString(), '127.0.0.0');
    assert.equal(v4!.range[1], 8);
    assert.equal(v6!.range[0].kind(), 'ipv6');
    assert.equal(v6!.range[1], 128);
    assert.equal(remote!.address, '0.0.0.0:443');
    assert.equal(remote!.host, '0.0.0.0');
    assert.equal(remote!.port, 443);
    assert.equal(remote!.tls, 'starttls-required');
    assert.equal(remote!.auth, 'required');

    assert.equal(c.tls.certificate, '/etc/smarthost/relay.pem');
    assert.equal(c.tls.key, '/etc/smarthost/relay.key');
    assert.equal(c.auth.usersFile, '/etc/smarthost/users');

    assert.deepEqual({ ...c.relay!, mechanisms: [...c.relay!.mechanisms] }, {
      url: 'smtp://smtp.mailgun.org:587', scheme: 'smtp', host: 'smtp.mailgun.org', port: 587,
      tls: 'verify', username: 'postmaster@mg.example.com', passwordFile: '/etc/smarthost/mailgun.secret',
      mechanisms: ['PLAIN', 'LOGIN'], allowPlaintextAuth: false, minTlsVersion: 'TLSv1.2', concurrency: 20, timeoutMs: 300_000,
      urls: [{ url: 'smtp://smtp.mailgun.org:587', scheme: 'smtp', host: 'smtp.mailgun.org', port: 587 }], fallbackUrls: [],
      reuseMessages: 100, reuseTimeMs: 300_000,
    });

    assert.equal(c.routes.length, 1);
    const r = c.routes[0]!;
    assert.deepEqual([...r.domains], ['corp.example.com', '.corp.example.com']);
    assert.deepEqual([r.scheme, r.host, r.port, r.tls], ['smtp', '10.0.0.5', 25, 'none']);
    assert.equal(r.username, undefined);

    assert.deepEqual([...c.local.domains], ['relay.example.com', 'localhost']);
    assert.equal(c.local.maildir, '/var/mail/{user}');
    assert.deepEqual(JSON.parse(JSON.stringify(c.local.aliases)), { root: ['admin@example.com'], postmaster: ['root'] });
    assert.deepEqual({ ...c.rewrite.senders }, { '@relay.localdomain': 'alerts@example.com' });

    assert.deepEqual({ ...c.queue }, { store: { kind: 'files' }, nodeName: c.queue.nodeName, leaseMs: 120_000, lifetimeMs: 432_000_000, retryMinMs: 300_000, retryMaxMs: 3_600_000, delayWarningMs: 0, deferDelivery: false });
    assert.equal(c.limits.messageSize, 25_000_000);
    assert.equal(c.limits.recipients, 100);
    assert.equal(c.limits.connections, 500);
    assert.equal(c.limits.connectionsPerIp, 50);
    assert.deepEqual({ ...c.limits.authFailures }, { count: 5, windowMs: 600_000 });
  });

  it('names a relay with smtps:// and no port as port 465', () => {
    const c = valid(text.replace('url = "smtp://smtp.mailgun.org:587"', 'url = "smtps://smtp.mailgun.org"'));
    assert.deepEqual([c.relay!.scheme, c.relay!.host, c.relay!.port], ['smtps', 'smtp.mailgun.org', 465]);
  });
});

describe('parseConfig: the empty config', () => {
  it('yields the embedded defaults', () => {
    const c = valid('', '/srv/relay/smarthost.toml');
    assert.equal(c.listen.length, 1);
    const l = c.listen[0]!;
    assert.deepEqual([l.address, l.host, l.port, l.tls, l.auth], ['127.0.0.1:2525', '127.0.0.1', 2525, 'none', 'none']);
    assert.deepEqual(l.trustedNetworks.map((n) => n.text), ['127.0.0.0/8', '::1/128']);
    assert.equal(c.dataDir, '/srv/relay/data', 'relative paths are anchored at the config file');
    assert.deepEqual([...c.local.domains], ['localhost']);
    assert.equal(c.local.maildir, '/srv/relay/data/mail/{user}');
    assert.equal(c.relay, undefined, 'no [relay]: direct MX delivery');
    assert.deepEqual([...c.routes], []);
    assert.equal(c.limits.messageSize, 25_000_000);
    assert.deepEqual({ ...c.limits.authFailures }, { count: 5, windowMs: 600_000 });
    assert.equal(c.queue.lifetimeMs, 5 * 86_400_000);
    assert.equal(c.queue.delayWarningMs, 0);
  });

  it('anchors relative paths at the given base directory', () => {
    const { config } = parseConfig('', '(embedded default)', '/home/me/work');
    assert.equal(config?.dataDir, '/home/me/work/data');
  });
});

describe('parseConfig: problems', () => {
  it('reports every mistake, each with file, line, path, message and fix', () => {
    const problems = invalid([
      'hostname = "relay.example.com"',  // 1
      '[[listen]]',                      // 2
      'address = "127.0.0.1:25"',        // 3
      'tls = "startls"',                 // 4 mistake 1
      '[queue]',                         // 5
      'lifetime = "5 days"',             // 6 mistake 2
      '[limits]',                        // 7
      'message_size = "25 megs"',        // 8 mistake 3
    ].join('\n'));
    assert.equal(problems.length, 3, JSON.stringify(problems, null, 2));
    const tls = problemAt(problems, 'listen[0].tls');
    assert.equal(tls.line, 4);
    assert.match(tls.message, /startls/);
    assert.match(tls.fix, /tls = "starttls"/);
    const lifetime = problemAt(problems, 'queue.lifetime');
    assert.equal(lifetime.line, 6);
    assert.match(lifetime.message, /5 days/);
    assert.match(lifetime.fix, /lifetime = "5d"/);
    const size = problemAt(problems, 'limits.message_size');
    assert.equal(size.line, 8);
    assert.match(size.fix, /message_size = "25MB"/);
  });

  it('reads [queue] defer_delivery as a boolean and refuses anything else', () => {
    assert.equal(valid('[queue]\ndefer_delivery = true').queue.deferDelivery, true);
    const [p, ...rest] = invalid('[queue]\ndefer_delivery = "yes"');
    assert.equal(rest.length, 0);
    assert.equal(p!.path, 'queue.defer_delivery');
    assert.equal(p!.line, 2);
    assert.match(p!.message, /must be true or false, not "yes"/);
    assert.match(p!.fix, /defer_delivery = false/);
  });

  it('reports unknown keys with a "did you mean" fix', () => {
    const problems = invalid([
      'hostnme = "relay.example.com"',   // 1
      '[relay]',                         // 2
      'url = "smtp://smtp.example.com:587"', // 3
      'usrname = "me"',                  // 4
      '[[listen]]',                      // 5
      'address = "127.0.0.1:25"',        // 6
      'trusted_network = ["10.0.0.0/8"]', // 7
      '[limit]',                         // 8
      'recipients = 5',                  // 9
    ].join('\n'));
    assert.equal(problems.length, 4, JSON.stringify(problems, null, 2));
    const expected: Array<[string, number, string]> = [
      ['hostnme', 1, 'hostname'], ['relay.usrname', 4, 'username'],
      ['listen[0].trusted_network', 7, 'trusted_networks'], ['limit', 8, 'limits'],
    ];
    for (const [p, line, near] of expected) {
      const x = problemAt(problems, p);
      assert.equal(x.line, line, p);
      assert.match(x.message, /unknown key/);
      assert.ok(x.message.includes(p), x.message);
      assert.equal(x.fix, `did you mean "${near}"?`);
    }
  });

  it('lists the known keys when an unknown key is like none of them', () => {
    const p = problemAt(invalid('[queue]\nfavourite_colour = "blue"\n'), 'queue.favourite_colour');
    assert.equal(p.line, 2);
    assert.match(p.fix, /lifetime/);
    assert.match(p.fix, /retry_max/);
  });

  for (const [url, fix] of [
    ['[127.0.0.1]:2525', 'smtp://127.0.0.1:2525'],
    ['[127.0.0.1:2525]', 'smtp://127.0.0.1:2525'],
    ['[smtp.example.com]:587', 'smtp://smtp.example.com:587'],
    ['[::1]:2525', 'smtp://[::1]:2525'],
    ['[2001:db8::1]:587', 'smtp://[2001:db8::1]:587'],
  ] as const) {
    it(`turns Postfix relayhost syntax ${url} into ${fix}`, () => {
      const p = problemAt(invalid(`[relay]\nurl = "${url}"\ntls = "none"\n`), 'relay.url');
      assert.equal(p.line, 2);
      assert.match(p.message, /Postfix/);
      assert.ok(p.fix.includes(`"${fix}"`), `fix should show ${fix}: ${p.fix}`);
    });
  }

  for (const url of ['smtp.example.com:587', 'localhost:2525', '10.0.0.5:25']) {
    it(`shows the smtp:// form for a url without a scheme: ${url}`, () => {
      const p = problemAt(invalid(`[relay]\ntls = "may"\nurl = "${url}"\n`), 'relay.url');
      assert.equal(p.line, 3);
      assert.ok(p.message.includes(url), p.message);
      assert.ok(p.fix.includes(`"smtp://${url}"`), `fix should show smtp://${url}: ${p.fix}`);
    });
  }

  it('refuses smtps:// with tls = "may" or "none"', () => {
    for (const tls of ['may', 'none']) {
      const p = problemAt(invalid(`[relay]\nurl = "smtps://smtp.example.com:465"\ntls = "${tls}"\n`), 'relay.tls');
      assert.equal(p.line, 3);
      assert.match(p.message, /smtps/);
      assert.match(p.fix, /tls = "verify"/);
    }
    valid('[relay]\nurl = "smtps://smtp.example.com:465"\ntls = "encrypt"\n');
  });

  it('refuses AUTH on a listener without TLS unless allow_plaintext_auth = true', () => {
    const lines = ['[[listen]]', 'address = "127.0.0.1:25"', '[[listen]]', 'address = "0.0.0.0:587"', 'auth = "required"'];
    const p = problemAt(invalid(lines.join('\n')), 'listen[1].auth');
    assert.equal(p.line, 5);
    assert.match(p.message, /AUTH/);
    assert.match(p.fix, /starttls-required/);
    assert.match(p.fix, /allow_plaintext_auth = true/);
    const ok = valid([...lines, 'allow_plaintext_auth = true'].join('\n'));
    assert.equal(ok.listen[1]!.allowPlaintextAuth, true);
    valid([...lines, 'tls = "starttls"'].join('\n'));
  });

  it('refuses a bad CIDR in trusted_networks and names it', () => {
    const problems = invalid([
      '[[listen]]',
      'address = "127.0.0.1:25"',
      'trusted_networks = [',
      '  "127.0.0.0/8",',
      '  "10.0.0.0/33",',
      '  "192.168.1.0/24",',
      ']',
      'tls = "none"',
    ].join('\n'));
    const p = problemAt(problems, 'listen[0].trusted_networks');
    assert.equal(p.line, 3);
    assert.match(p.message, /"10\.0\.0\.0\/33"/);
    assert.match(p.fix, /CIDR/);
    assert.equal(problems.length, 1);
  });

  it('accepts plain addresses in trusted_networks as /32 and /128', () => {
    const c = valid('[[listen]]\naddress = "127.0.0.1:25"\ntrusted_networks = ["192.0.2.7", "2001:db8::1"]\n');
    assert.deepEqual(c.listen[0]!.trustedNetworks.map((n) => n.range[1]), [32, 128]);
  });

  it('refuses two routes with one name, also when one has the default name, and names both', () => {
    const route = (name: string, d: string) => `[[route]]\n${name ? `name = "${name}"\n` : ''}domains = ["${d}"]\nurl = "smtp://10.0.0.5:25"\n`;
    const p = problemAt(invalid(route('corp', 'a.example') + route('corp', 'b.example')), 'route[1].name');
    assert.equal(p.line, 6);
    assert.match(p.message, /^route\[1\]\.name = "corp" is also the name of route\[0\]/);
    assert.match(p.fix, /name = "corp-2"/);
    const d = problemAt(invalid(route('route2', 'a.example') + route('', 'b.example')), 'route[1].name');
    assert.match(d.message, /^route\[1\] \(no name: "route2" by default\) is also the name of route\[0\]/);
    assert.deepEqual(valid(route('a', 'a.example') + route('b', 'b.example') + route('', 'c.example')).routes.map((r) => r.name), ['a', 'b', 'route3']);
  });

  it('refuses a username without a password', () => {
    const p = problemAt(invalid('[relay]\nurl = "smtp://smtp.example.com:587"\nusername = "me@example.com"\n'), 'relay.username');
    assert.equal(p.line, 3);
    assert.match(p.message, /password/);
    assert.match(p.fix, /password_file|password_env/);
    valid('[relay]\nurl = "smtp://smtp.example.com:587"\nusername = "me@example.com"\npassword_env = "RELAY_PASSWORD"\n');
  });

  it('reports a TOML syntax error on its line', () => {
    const problems = invalid([
      'hostname = "relay.example.com"', // 1
      '[relay]',                        // 2
      'url = "smtp://a:25',             // 3 unterminated string
      'tls = "may"',                    // 4
    ].join('\n'));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.line, 3);
    assert.match(problems[0]!.message, /not valid TOML/);
  });

  it('reports a mistake after a multi-line array on its own line', () => {
    const p = problemAt(invalid([
      '[local]',                 // 1
      'domains = [',             // 2
      '  "relay.example.com",',  // 3
      '  "localhost",',          // 4
      ']',                       // 5
      'maildir = "/var/mail"',   // 6 no {user}
    ].join('\n')), 'local.maildir');
    assert.equal(p.line, 6);
    assert.match(p.fix, /\{user\}/);
  });
});

describe('parseConfig: the result is frozen', () => {
  const text = fs.readFileSync(path.join(ROOT, 'test/configs/spec-example.toml'), 'utf8');

  it('freezes the config and its nested objects', () => {
    const c = valid(text);
    for (const [name, v] of Object.entries({
      config: c, listen: c.listen, 'listen[0]': c.listen[0], trustedNetworks: c.listen[0]!.trustedNetworks,
      relay: c.relay, routes: c.routes, 'routes[0]': c.routes[0], local: c.local, aliases: c.local.aliases,
      queue: c.queue, limits: c.limits, tls: c.tls,
    })) assert.ok(Object.isFrozen(v), `${name} is frozen`);
    assert.throws(() => { (c.limits as { messageSize: number }).messageSize = 1; }, TypeError);
    assert.throws(() => { (c.listen as ListenArray).push(c.listen[0]!); }, TypeError);
  });

  it('leaves no plain object or array reachable from the config unfrozen', () => {
    const unfrozen: string[] = [];
    const walk = (v: unknown, at: string): void => {
      if (typeof v !== 'object' || v === null) return;
      const proto = Object.getPrototypeOf(v);
      if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return; // e.g. ipaddr.js objects
      if (!Object.isFrozen(v)) unfrozen.push(at);
      for (const [k, child] of Object.entries(v)) walk(child, Array.isArray(v) ? `${at}[${k}]` : `${at}.${k}`);
    };
    walk(valid(text), 'config');
    assert.deepEqual(unfrozen, []);
  });
});

describe('parseConfig: [metrics]', () => {
  it('opens no metrics listener when the section is absent', () => {
    assert.equal(valid('').metrics, undefined);
  });

  it('reads host:port, [v6]:port and port 0, frozen', () => {
    for (const [address, host, port] of [
      ['127.0.0.1:9325', '127.0.0.1', 9325], ['[::1]:9100', '::1', 9100], ['127.0.0.1:0', '127.0.0.1', 0],
    ] as const) {
      const m = valid(`[metrics]\naddress = "${address}"\n`).metrics;
      assert.deepEqual({ ...m }, { address, host, port });
      assert.ok(Object.isFrozen(m));
    }
  });

  it('listens on the loopback default when [metrics] has no address', () => {
    assert.deepEqual({ ...valid('[metrics]\n').metrics }, { address: '127.0.0.1:9325', host: '127.0.0.1', port: 9325 });
  });

  it('refuses an address that is not host:port, and unknown keys', () => {
    for (const bad of ['9325', ':9325', '127.0.0.1:70000', 'http://127.0.0.1:9325']) {
      const problems = invalid(`[metrics]\naddress = "${bad}"\n`);
      const p = problemAt(problems, 'metrics.address');
      assert.equal(p.line, 2);
      assert.ok(p.message.includes(bad), p.message);
      assert.match(p.fix, /address = "127\.0\.0\.1:9325"/);
    }
    const p = problemAt(invalid('[metrics]\naddress = "127.0.0.1:9325"\nadress = "x"\n'), 'metrics.adress');
    assert.equal(p.line, 3);
    assert.equal(p.fix, 'did you mean "address"?');
    problemAt(invalid('metrics = "127.0.0.1:9325"\n'), 'metrics');
  });
});

type ListenArray = Config['listen'][number][];

describe('parseConfig: upstream failover, rate and connection reuse (issue 5)', () => {
  it('reads url as one URL or a list, fallback_urls, rate and the reuse limits', () => {
    const c = valid(`[relay]
url = ["smtp://a.example.com:587", "smtps://b.example.com"]
fallback_urls = ["smtp://backup.example.net:2525"]
tls = "verify"
rate = "30/1m"
reuse_messages = 2
reuse_time = "30s"
`);
    const r = c.relay!;
    assert.equal(r.url, 'smtp://a.example.com:587', 'url/host/port stay the first URL');
    assert.equal(r.host, 'a.example.com');
    assert.deepEqual(r.urls, [
      { url: 'smtp://a.example.com:587', scheme: 'smtp', host: 'a.example.com', port: 587 },
      { url: 'smtps://b.example.com', scheme: 'smtps', host: 'b.example.com', port: 465 },
    ]);
    assert.deepEqual(r.fallbackUrls, [{ url: 'smtp://backup.example.net:2525', scheme: 'smtp', host: 'backup.example.net', port: 2525 }]);
    assert.deepEqual(r.rate, { count: 30, windowMs: 60_000 });
    assert.equal(r.reuseMessages, 2);
    assert.equal(r.reuseTimeMs, 30_000);
    assert.ok(Object.isFrozen(r.urls) && Object.isFrozen(r.urls![1]) && Object.isFrozen(r.rate));
  });

  it('defaults: one URL, no fallback, no rate, 100 messages or 5 minutes per connection', () => {
    const r = valid('[[route]]\ndomains = ["x.example"]\nurl = "smtp://10.0.0.5:25"\ntls = "none"\n').routes[0]!;
    assert.deepEqual(r.urls!.map((u) => u.url), ['smtp://10.0.0.5:25']);
    assert.deepEqual(r.fallbackUrls, []);
    assert.equal(r.rate, undefined);
    assert.equal(r.reuseMessages, 100);
    assert.equal(r.reuseTimeMs, 300_000);
  });

  it('checks every URL of a list and names the index of a bad one', () => {
    const problems = invalid('[relay]\nurl = ["smtp://ok.example:587", "[smtp.example.com]:587"]\nfallback_urls = ["smtp.backup.example:25"]\n');
    const url = problemAt(problems, 'relay.url');
    assert.equal(url.line, 2);
    assert.match(url.message, /^relay\.url\[1\]: "\[smtp\.example\.com\]:587" is Postfix's relayhost syntax/);
    assert.match(url.fix, /"smtp:\/\/smtp\.example\.com:587"/);
    const fb = problemAt(problems, 'relay.fallback_urls');
    assert.equal(fb.line, 3);
    assert.match(fb.message, /^relay\.fallback_urls\[0\]: "smtp\.backup\.example:25" is not a URL/);
  });

  it('refuses an empty list, a fallback_urls string, a bad rate, reuse_messages = 0 and reuse_time = 0', () => {
    problemAt(invalid('[relay]\nurl = []\n'), 'relay.url');
    assert.match(problemAt(invalid('[relay]\nurl = "smtp://a.example:25"\nfallback_urls = "smtp://b.example:25"\n'), 'relay.fallback_urls').message, /non-empty list of URLs/);
    assert.match(problemAt(invalid('[relay]\nurl = "smtp://a.example:25"\nrate = "30 per minute"\n'), 'relay.rate').fix, /rate = "30\/1m"/);
    problemAt(invalid('[relay]\nurl = "smtp://a.example:25"\nreuse_messages = 0\n'), 'relay.reuse_messages');
    problemAt(invalid('[relay]\nurl = "smtp://a.example:25"\nreuse_time = "0"\n'), 'relay.reuse_time');
  });

  it('refuses tls = "may" when any URL of the list, or a fallback, is smtps://', () => {
    problemAt(invalid('[relay]\nurl = ["smtp://a.example:587"]\nfallback_urls = ["smtps://b.example:465"]\ntls = "may"\n'), 'relay.tls');
  });
});

describe('auth = "oauth2" upstreams (issue 5)', () => {
  const relay = (extra: string) => `[relay]\nurl = "smtps://smtp.gmail.com:465"\nusername = "alice@example.com"\nauth = "oauth2"\n${extra}`;

  it('fills the Google preset and defaults the mechanism to XOAUTH2', () => {
    const c = valid(relay('provider = "google"\nclient_id = "id.apps.googleusercontent.com"\nclient_secret_file = "google.secret"\nrefresh_token_file = "relay.oauth"\n'));
    assert.deepEqual(c.relay!.mechanisms, ['XOAUTH2']);
    assert.deepEqual({ ...c.relay!.oauth }, {
      route: 'relay', grant: 'refresh_token', provider: 'google', clientId: 'id.apps.googleusercontent.com',
      tokenUrl: 'https://oauth2.googleapis.com/token', deviceUrl: 'https://oauth2.googleapis.com/device/code', scope: 'https://mail.google.com/',
      clientSecretFile: '/etc/smarthost/google.secret', refreshTokenFile: '/etc/smarthost/relay.oauth',
    });
  });

  it('puts the Microsoft tenant into its URLs, names a [[route]] by its name, allows OAUTHBEARER', () => {
    const c = valid('[[route]]\nname = "m365"\ndomains = ["corp.example.com"]\nurl = "smtp://smtp.office365.com:587"\nusername = "bob@corp.example.com"\n' +
      'auth = "oauth2"\nprovider = "microsoft"\ntenant = "contoso.onmicrosoft.com"\nclient_id = "c"\nrefresh_token_file = "/etc/smarthost/m365.oauth"\nmechanisms = ["OAUTHBEARER"]\n');
    const o = c.routes[0]!.oauth!;
    assert.ok(o.grant === 'refresh_token');
    assert.equal(o.route, 'm365');
    assert.equal(o.tokenUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    assert.equal(o.deviceUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode');
    assert.equal(o.scope, 'https://outlook.office.com/SMTP.Send offline_access');
    assert.equal(o.clientSecretFile, undefined, 'a public client has no secret');
    assert.deepEqual(c.routes[0]!.mechanisms, ['OAUTHBEARER']);
    assert.match(valid(relay('provider = "microsoft"\nclient_id = "c"\nrefresh_token_file = "r"\n')).relay!.oauth!.tokenUrl, /\/common\/oauth2\/v2\.0\/token$/);
  });

  it('accepts a custom http token_url only on loopback', () => {
    valid(relay('token_url = "http://127.0.0.1:8080/token"\ndevice_url = "http://localhost:8080/device"\nclient_id = "c"\nrefresh_token_file = "r"\n'));
    const p = problemAt(invalid(relay('token_url = "http://login.example.com/token"\nclient_id = "c"\nrefresh_token_file = "r"\n')), 'relay.token_url');
    assert.match(p.message, /not an https:\/\/ URL/);
    assert.equal(p.fix, 'write token_url = "https://login.example.com/token"');
  });

  it('lists every oauth2 mistake with its fix', () => {
    const problems = invalid(relay('provider = "yahoo"\npassword_file = "x"\nmechanisms = ["PLAIN"]\n'));
    assert.match(problemAt(problems, 'relay.provider').fix, /"google" or "microsoft"/);
    assert.match(problemAt(problems, 'relay.refresh_token_file').fix, /smarthost oauth login relay/);
    assert.match(problemAt(problems, 'relay.client_id').message, /no client_id/);
    assert.match(problemAt(problems, 'relay.password_file').fix, /remove password_file/);
    assert.match(problemAt(problems, 'relay.mechanisms').fix, /XOAUTH2/);
    assert.match(problemAt(problems, 'relay.auth').message, /no token endpoint/);
    assert.ok(!problems.some((p) => p.path === 'relay.username'), 'no "username without password" with oauth2');
  });

  it('refuses oauth keys without auth = "oauth2", and oauth2 without a username', () => {
    assert.match(problemAt(invalid('[relay]\nurl = "smtp://a.example:587"\nrefresh_token_file = "r"\n'), 'relay.refresh_token_file').fix, /auth = "oauth2"/);
    problemAt(invalid('[relay]\nurl = "smtp://a.example:587"\nauth = "oauth2"\nprovider = "google"\nclient_id = "c"\nrefresh_token_file = "r"\n'), 'relay.username');
  });
});

describe('upstreamFromUrl (probe --url)', () => {
  it('reads the URL through the [relay] reader: every default filled, smtps:// at verify, smtp:// at may', async () => {
    const [{ upstreamFromUrl }, { DEFAULTS }] = await Promise.all([import('./upstream-section.js'), import('./defaults.js')]);
    const tls = upstreamFromUrl('smtps://smtp.example.net:465');
    assert.ok(!('error' in tls));
    assert.equal(tls.tls, 'verify');
    assert.equal(tls.reuseMessages, DEFAULTS.reuseMessages);
    assert.deepEqual(tls.mechanisms, DEFAULTS.mechanisms);
    const plain = upstreamFromUrl('smtp://127.0.0.1:2525');
    assert.ok(!('error' in plain));
    assert.equal(plain.tls, 'may');
    assert.equal(plain.timeoutMs, DEFAULTS.smtpTimeoutMs);
    const bad = upstreamFromUrl('[mail.example.net]:587');
    assert.ok('error' in bad);
    assert.match(bad.fix, /smtp:\/\/mail\.example\.net:587/);
  });
});
