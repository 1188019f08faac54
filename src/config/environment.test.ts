// Environment overrides for containers (issue 20): applied over the file,
// validated like it, and a problem names the variable instead of a line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyOverrides, environmentOverrides, listenOverride } from './environment.js';
import { formatProblems, parseConfig } from './load.js';

const FILE = '/etc/smarthost/smarthost.toml';

describe('environmentOverrides', () => {
  it('takes the set variables, resolves paths against the current folder, ignores empty ones', () => {
    const o = environmentOverrides({ SMARTHOST_DATA_DIR: 'spool', SMARTHOST_RELAY_URL: ' smtp://a:587 ', SMARTHOST_HOSTNAME: '', PATH: '/bin' }, '/srv/app');
    assert.deepEqual(o, [{ name: 'SMARTHOST_RELAY_URL', value: 'smtp://a:587' }, { name: 'SMARTHOST_DATA_DIR', value: '/srv/app/spool' }]);
  });
});

describe('applyOverrides', () => {
  it('SMARTHOST_LISTEN replaces the addresses; each listener keeps the first [[listen]]\'s settings', () => {
    const raw = { listen: [{ address: '127.0.0.1:25', tls: 'starttls', trusted_networks: ['10.0.0.0/8'] }, { address: '0.0.0.0:465', tls: 'implicit' }] };
    const out = applyOverrides(raw, [{ name: 'SMARTHOST_LISTEN', value: '0.0.0.0:25, [::]:25' }]);
    assert.deepEqual(out.listen, [
      { tls: 'starttls', trusted_networks: ['10.0.0.0/8'], address: '0.0.0.0:25' },
      { tls: 'starttls', trusted_networks: ['10.0.0.0/8'], address: '[::]:25' },
    ]);
    assert.equal(raw.listen.length, 2, 'the input is not changed');
  });

  it('relay variables create [relay] or change it; a password file replaces password_env', () => {
    assert.deepEqual(applyOverrides({}, [{ name: 'SMARTHOST_RELAY_URL', value: 'smtp://a:587' }]).relay, { url: 'smtp://a:587' });
    const out = applyOverrides({ relay: { url: 'smtp://old:25', username: 'u', password_env: 'PW' } },
      [{ name: 'SMARTHOST_RELAY_PASSWORD_FILE', value: '/run/secrets/pw' }, { name: 'SMARTHOST_RELAY_USERNAME', value: 'me' }]);
    assert.deepEqual(out.relay, { url: 'smtp://old:25', username: 'me', password_file: '/run/secrets/pw' });
  });
});

describe('parseConfig with overrides', () => {
  it('the values take effect and are listed on the config', () => {
    const { config, problems } = parseConfig('hostname = "file.test"\n[relay]\nurl = "smtp://file.test:25"\n', FILE, '/etc/smarthost',
      [{ name: 'SMARTHOST_HOSTNAME', value: 'env.test' }, { name: 'SMARTHOST_RELAY_URL', value: 'smtps://env.test:465' }, { name: 'SMARTHOST_DATA_DIR', value: '/var/lib/x' }]);
    assert.deepEqual(problems, []);
    assert.equal(config!.hostname, 'env.test');
    assert.equal(config!.relay!.url, 'smtps://env.test:465');
    assert.equal(config!.dataDir, '/var/lib/x');
    assert.equal(config!.auth.usersFile, '/var/lib/x/users');
    assert.deepEqual(config!.overrides!.map((o) => o.name), ['SMARTHOST_HOSTNAME', 'SMARTHOST_RELAY_URL', 'SMARTHOST_DATA_DIR']);
  });

  it('a bad value is a problem that names the variable and says what to set', () => {
    const { config, problems } = parseConfig('[relay]\nurl = "smtp://ok:25"\n', FILE, '/etc/smarthost', [{ name: 'SMARTHOST_RELAY_URL', value: '[mail.example.net]:587' }]);
    assert.equal(config, undefined);
    const text = formatProblems(problems);
    assert.match(text, /^SMARTHOST_RELAY_URL \(environment\): relay\.url: "\[mail\.example\.net\]:587" is Postfix's relayhost syntax/);
    assert.match(text, /fix: set SMARTHOST_RELAY_URL="smtp:\/\/mail\.example\.net:587"/);
    const listen = formatProblems(parseConfig('', FILE, '/', [{ name: 'SMARTHOST_LISTEN', value: 'localhost' }]).problems);
    assert.match(listen, /^SMARTHOST_LISTEN \(environment\): listen\[0\]\.address = "localhost" is not host:port\n    fix: set SMARTHOST_LISTEN="0\.0\.0\.0:25"/);
    const flag = formatProblems(parseConfig('', FILE, '/', [{ name: 'SMARTHOST_LISTEN', value: '127.0.0.1:25' }, listenOverride(['nowhere'])]).problems);
    assert.match(flag, /^--listen nowhere: listen\[0\]\.address = "nowhere" is not host:port\n    fix: give --listen 0\.0\.0\.0:25/);
  });

  it('a [relay] made only of variables: its problems name them', () => {
    const { problems } = parseConfig('', FILE, '/', [{ name: 'SMARTHOST_RELAY_USERNAME', value: 'me' }]);
    const text = formatProblems(problems);
    assert.match(text, /SMARTHOST_RELAY_USERNAME \(environment\): relay has no url\n    fix: set SMARTHOST_RELAY_URL="smtp:\/\/smtp\.example\.com:587"/);
    assert.match(text, /SMARTHOST_RELAY_USERNAME \(environment\): relay has a username but no password\n    fix: set SMARTHOST_RELAY_PASSWORD_FILE=/);
  });
});
