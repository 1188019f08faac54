// `smarthost config default` must print exactly the embedded default: parsed
// back, it gives the same Config as no file at all.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'smol-toml';
import { defaultToml } from './default-toml.js';
import { EMBEDDED_DEFAULT, parseConfig } from './load.js';
import { TOP_KEYS } from './validate.js';

describe('defaultToml', () => {
  it('parses back to the embedded default', () => {
    const printed = parseConfig(defaultToml(), '/srv/relay/smarthost.toml');
    assert.deepEqual(printed.problems, []);
    const embedded = parseConfig('', EMBEDDED_DEFAULT, '/srv/relay');
    assert.deepEqual({ ...printed.config!, source: '' }, { ...embedded.config!, source: '' });
  });

  it('leaves the users file and the Maildirs to follow data_dir, so that changing data_dir moves them', () => {
    const edited = defaultToml().replace(/^data_dir = .*$/m, 'data_dir = "/var/lib/smarthost"');
    const c = parseConfig(edited, '/etc/smarthost/smarthost.toml').config!;
    assert.equal(c.auth.usersFile, '/var/lib/smarthost/users');
    assert.match(c.local.maildir, /^\/var\/lib\/smarthost\//);
  });

  it('writes every section except the optional upstream ones', () => {
    const keys = Object.keys(parse(defaultToml()));
    assert.deepEqual(TOP_KEYS.filter((k) => !keys.includes(k)), ['hostname', 'relay', 'route', 'metrics', 'http', 'webhook', 'dkim']);
  });
});
