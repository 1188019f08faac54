// [queue] store, password_file, node_name and lease (issue 17): what a valid file yields, and
// what the user reads for each mistake (file, line, message, fix).
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { parseConfig } from './load.js';
import type { Config, Problem } from './types.js';

const FILE = '/etc/smarthost/smarthost.toml';

function valid(text: string): Config {
  const { config, problems } = parseConfig(text, FILE);
  assert.deepEqual(problems, []);
  return config!;
}

function oneProblem(text: string): Problem {
  const { config, problems } = parseConfig(text, FILE);
  assert.equal(config, undefined);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.file, FILE);
  return problems[0]!;
}

describe('[queue] store', () => {
  it('defaults to files under data_dir, the host name as node name, and a 2-minute lease', () => {
    const q = valid('').queue;
    assert.deepEqual(q.store, { kind: 'files' });
    assert.equal(q.nodeName, os.hostname().split('.')[0]);
    assert.equal(q.leaseMs, 120_000);
  });

  it('reads a PostgreSQL URL, password_file (from the file folder), node_name and lease', () => {
    const q = valid('[queue]\nstore = "postgresql://smarthost@db.example.com:5433/mail?sslmode=verify-full"\npassword_file = "db.secret"\nnode_name = "relay-a"\nlease = "30s"\n').queue;
    assert.deepEqual(q.store, { kind: 'postgresql', url: 'postgresql://smarthost@db.example.com:5433/mail?sslmode=verify-full', passwordFile: '/etc/smarthost/db.secret' });
    assert.equal(q.nodeName, 'relay-a');
    assert.equal(q.leaseMs, 30_000);
  });

  it('refuses a store that is not a PostgreSQL connection string, and says how to write one', () => {
    for (const bad of ['mysql://db/x', 'postgresql://db.example.com', 'files']) {
      const p = oneProblem(`[queue]\nstore = "${bad}"\n`);
      assert.equal(p.path, 'queue.store');
      assert.equal(p.line, 2);
      assert.match(p.message, /is not a PostgreSQL connection string \(postgresql:\/\/USER@HOST\[:PORT\]\/DATABASE\)/);
      assert.match(p.fix, /store = "postgresql:\/\/smarthost@db\.example\.com\/smarthost"/);
    }
    assert.match(oneProblem('[queue]\nstore = "postgresql://u@h/d?options=-c%20x%3Dy"\n').message, /parameter "options" is not supported/);
  });

  it('refuses password_file without a store, and a password in two places', () => {
    const alone = oneProblem('[queue]\npassword_file = "/etc/smarthost/db.secret"\n');
    assert.equal(alone.path, 'queue.password_file');
    assert.match(alone.message, /is for a PostgreSQL store, and queue.store is not set/);
    const both = oneProblem('[queue]\nstore = "postgresql://u:pw@h/d"\npassword_file = "/x"\n');
    assert.equal(both.path, 'queue.password_file');
    assert.match(both.fix, /keep the password in one place/);
  });

  it('refuses a node name with spaces and a lease under a second', () => {
    const name = oneProblem('[queue]\nnode_name = "relay a"\n');
    assert.equal(name.path, 'queue.node_name');
    assert.match(name.fix, /node_name = "relay-a"/);
    const lease = oneProblem('[queue]\nlease = "500ms"\n');
    assert.equal(lease.path, 'queue.lease');
  });

  it('names a misspelt key with the closest one', () => {
    const p = oneProblem('[queue]\nleese = "2m"\n');
    assert.equal(p.path, 'queue.leese');
    assert.match(p.fix, /lease/);
  });
});
