// [auth] and [limits] keys of issue 21: auth_failures_per_account, messages_per_session,
// tls_handshake_timeout, forbid_bare_newline and [auth] senders, with their defaults and
// what a user sees for each bad value.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.js';
import type { Config, Problem } from './types.js';

const FILE = '/etc/smarthost/smarthost.toml';

function valid(text: string): Config {
  const { config, problems } = parseConfig(text, FILE);
  assert.deepEqual(problems, []);
  return config!;
}

/** The one problem, at `path`, on `line`. */
function problem(text: string, path: string, line: number): Problem {
  const { config, problems } = parseConfig(text, FILE);
  assert.equal(config, undefined);
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  assert.equal(problems[0]!.path, path);
  assert.equal(problems[0]!.line, line);
  return problems[0]!;
}

describe('[limits] of issue 21', () => {
  it('defaults: 10 failures per account in 15 minutes, 1000 messages a session, a 30s handshake, bare LF refused', () => {
    const l = valid('').limits;
    assert.deepEqual({ ...l.authFailuresPerAccount }, { count: 10, windowMs: 900_000 });
    assert.equal(l.messagesPerSession, 1000);
    assert.equal(l.tlsHandshakeTimeoutMs, 30_000);
    assert.equal(l.forbidBareNewline, true);
  });

  it('reads each key; "0" turns the per-account limit off', () => {
    const l = valid('[limits]\nauth_failures_per_account = "0"\nmessages_per_session = 5\ntls_handshake_timeout = "10s"\nforbid_bare_newline = false\n').limits;
    assert.equal(l.authFailuresPerAccount, undefined);
    assert.equal(l.messagesPerSession, 5);
    assert.equal(l.tlsHandshakeTimeoutMs, 10_000);
    assert.equal(l.forbidBareNewline, false);
  });

  it('the handshake deadline never outlasts idle_timeout: by default the shorter; written longer, an error', () => {
    assert.equal(valid('[limits]\nidle_timeout = "10s"\n').limits.tlsHandshakeTimeoutMs, 10_000);
    const p = problem('[limits]\nidle_timeout = "10s"\ntls_handshake_timeout = "1m"\n', 'limits.tls_handshake_timeout', 3);
    assert.match(p.message, /longer than limits\.idle_timeout/);
    assert.match(p.fix, /no longer than idle_timeout/);
    assert.match(problem('[limits]\ntls_handshake_timeout = "0"\n', 'limits.tls_handshake_timeout', 2).message, /cannot be 0/);
    assert.match(problem('[limits]\ntls_handshake_timeout = "soon"\n', 'limits.tls_handshake_timeout', 2).message, /"soon" is not a duration/);
  });

  it('says what is wrong with each bad value, and how to write it', () => {
    const rate = problem('[limits]\nauth_failures_per_account = "10 per hour"\n', 'limits.auth_failures_per_account', 2);
    assert.match(rate.message, /must be a rate such as "5\/10m"/);
    assert.equal(rate.fix, 'write auth_failures_per_account = "10/15m" (or "0" for no limit)');
    assert.match(problem('[limits]\nmessages_per_session = 0\n', 'limits.messages_per_session', 2).message, /whole number from 1/);
    assert.match(problem('[limits]\nforbid_bare_newline = "yes"\n', 'limits.forbid_bare_newline', 2).message, /must be true or false/);
    assert.equal(problem('[limits]\nmesages_per_session = 5\n', 'limits.mesages_per_session', 2).fix, 'did you mean "messages_per_session"?');
  });
});

describe('[auth] senders', () => {
  it('maps users to lower-cased addresses and @domains; absent or empty: no binding', () => {
    const a = valid('[auth]\nsenders = { alice = ["Alice@Example.com", "@example.org"], bob = "bob@example.net" }\n').auth;
    assert.deepEqual(a.senders, { alice: ['alice@example.com', '@example.org'], bob: ['bob@example.net'] });
    assert.equal(valid('').auth.senders, undefined);
    assert.equal(valid('[auth]\nsenders = {}\n').auth.senders, undefined);
  });

  it('refuses an entry that is not an address or @domain, a value that is not a list, and a senders that is not a table', () => {
    const p = problem('[auth]\nsenders = { alice = ["alice"] }\n', 'auth.senders.alice', 2);
    assert.equal(p.message, '"alice" in auth.senders.alice is not an address or @domain');
    assert.equal(p.fix, 'write alice = ["alice@example.com", "@example.org"]');
    assert.match(problem('[auth]\nsenders = { alice = 5 }\n', 'auth.senders.alice', 2).message, /must be a list of addresses/);
    assert.match(problem('[auth]\nsenders = ["alice@example.com"]\n', 'auth.senders', 2).message, /must be a table of user = \[addresses\]/);
  });
});
