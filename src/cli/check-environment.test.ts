// The pure decisions behind `smarthost check`'s environment findings. CI runs
// as root, so the capability rule is table-tested here rather than end to end.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canBindPrivileged, isLoopbackHost, isPrivilegedPort, maildirBase } from './check-environment.js';

describe('canBindPrivileged', () => {
  const cases: Array<[string, number, string | undefined, boolean]> = [
    ['root with the full set', 0, '000001ffffffffff', true],
    ['root in a container with CAP_NET_BIND_SERVICE dropped', 0, '00000000a80421fb', false],
    ['root, CapEff unknown (not Linux)', 0, undefined, true],
    ['user without capabilities', 1000, '0000000000000000', false],
    ['user with only CAP_NET_BIND_SERVICE (setcap on node)', 1000, '0000000000000400', true],
    ['user with every capability but bit 10', 1000, '000001fffffffbff', false],
    ['user, CapEff unknown', 1000, undefined, false],
    ['user, CapEff garbled', 1000, 'zz', false],
  ];
  for (const [name, uid, cap, want] of cases) {
    it(`${name} -> ${want}`, () => assert.equal(canBindPrivileged(uid, cap), want));
  }
  it('reads bit 10 (0x400) of Docker\'s default set 00000000a80425fb', () => {
    assert.equal(canBindPrivileged(0, '00000000a80425fb'), true);
    assert.equal(canBindPrivileged(0, '00000000a80421fb'), false);
  });
});

describe('isPrivilegedPort', () => {
  it('ports below the start are privileged; 0 (any free port) never is', () => {
    assert.equal(isPrivilegedPort(25), true);
    assert.equal(isPrivilegedPort(1023), true);
    assert.equal(isPrivilegedPort(1024), false);
    assert.equal(isPrivilegedPort(0), false);
    assert.equal(isPrivilegedPort(25, 0), false, 'ip_unprivileged_port_start = 0, as in Docker');
    assert.equal(isPrivilegedPort(443, 500), true);
  });
});

describe('isLoopbackHost', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['[::1]', true], ['::ffff:127.0.0.1', true],
    ['localhost', true], ['LOCALHOST.', true],
    ['0.0.0.0', false], ['::', false], ['10.0.0.5', false], ['128.0.0.1', false], ['::ffff:10.0.0.1', false],
    ['smtp.example.com', false], ['localhost.example.com', false], ['', false],
  ];
  for (const [host, want] of cases) it(`${JSON.stringify(host)} -> ${want}`, () => assert.equal(isLoopbackHost(host), want));
});

describe('maildirBase', () => {
  const cases: Array<[string, string]> = [
    ['/var/mail/{user}', '/var/mail'],
    ['/var/mail//{user}', '/var/mail'],
    ['/home/{user}/Maildir', '/home'],
    ['/srv/mail/u-{user}/Maildir', '/srv/mail'],
    ['/{user}', '/'],
  ];
  for (const [template, want] of cases) it(`${template} -> ${want}`, () => assert.equal(maildirBase(template), want));
});
