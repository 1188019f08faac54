// Choosing what `smarthost probe` walks (relay, a route by name, --url) and the sender it uses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { chooseTarget, probeSender, type TargetChoice } from './target.js';

function config(text: string): Config {
  const { config: c, problems } = parseConfig(`hostname = "box.lan"\n${text}`, '/etc/smarthost/smarthost.toml');
  assert.deepEqual(problems, []);
  return c!;
}

const ROUTES = `[relay]\nurl = "smtp://smtp.example.com:587"\n[[route]]\nname = "corp"\ndomains = ["corp.example"]\nurl = "smtps://10.0.0.5:465"\n[[route]]\ndomains = ["x.example"]\nurl = "smtp://10.0.0.6"\ntls = "none"\n`;

function target(choice: TargetChoice) {
  assert.ok('target' in choice, 'usage' in choice ? choice.usage : '');
  return choice.target;
}

describe('probe target', () => {
  it('defaults to [relay]', () => {
    const t = target(chooseTarget(config(ROUTES), undefined, undefined));
    assert.equal(t.name, 'relay');
    assert.equal(t.section, '[relay]');
    assert.equal(t.upstream.host, 'smtp.example.com');
  });

  it('finds a route by its name, and an unnamed one by its generated name', () => {
    const c = config(ROUTES);
    assert.equal(target(chooseTarget(c, 'corp', undefined)).upstream.scheme, 'smtps');
    assert.equal(target(chooseTarget(c, 'route2', undefined)).upstream.host, '10.0.0.6');
    assert.equal(target(chooseTarget(c, 'corp', undefined)).section, '[[route]] "corp"');
  });

  it('an unknown route lists the known ones', () => {
    const r = chooseTarget(config(ROUTES), 'nope', undefined);
    assert.ok('usage' in r);
    assert.match(r.usage, /no route named "nope".*known: relay, corp, route2/);
  });

  it('without ROUTE, --url or [relay] it is a usage error that says so', () => {
    const r = chooseTarget(config(''), undefined, undefined);
    assert.ok('usage' in r);
    assert.match(r.usage, /has no \[relay\]: give a ROUTE name or --url/);
  });

  it('--url: smtp:// probes with tls "may", smtps:// with "verify", no credentials', () => {
    const c = config(ROUTES);
    const plain = target(chooseTarget(c, undefined, 'smtp://127.0.0.1:2525')).upstream;
    assert.deepEqual([plain.scheme, plain.tls, plain.port, plain.username], ['smtp', 'may', 2525, undefined]);
    const tls = target(chooseTarget(c, undefined, 'smtps://mail.example.com')).upstream;
    assert.deepEqual([tls.scheme, tls.tls, tls.port], ['smtps', 'verify', 465]);
  });

  it('--url in Postfix syntax gets the URL as its fix; ROUTE and --url together are refused', () => {
    const r = chooseTarget(config(''), undefined, '[mail.example.com]:587');
    assert.ok('usage' in r);
    assert.match(r.usage, /--url smtp:\/\/mail\.example\.com:587/);
    assert.ok('usage' in chooseTarget(config(ROUTES), 'corp', 'smtp://h:25'));
  });

  it('the sender is postmaster@hostname or --from, through [rewrite] senders', () => {
    const c = config('[rewrite]\nsenders = { "@box.lan" = "alerts@example.com" }\n');
    assert.deepEqual(probeSender(c, undefined), { sender: 'alerts@example.com', originalSender: 'postmaster@box.lan' });
    assert.deepEqual(probeSender(c, 'me@example.org'), { sender: 'me@example.org', originalSender: 'me@example.org' });
    assert.deepEqual(probeSender(config(''), 'root'), { sender: 'root@box.lan', originalSender: 'root@box.lan' });
  });
});
