import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from './load.js';
import { DEFAULT_SIGNED_HEADERS } from './dkim-section.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-dkim-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, k: crypto.KeyObject) => fs.writeFileSync(path.join(dir, name), k.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
write('rsa.key', crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
write('ed.key', crypto.generateKeyPairSync('ed25519').privateKey);

describe('[[dkim]]', () => {
  it('reads each key once, with its type and size; relative key_file is relative to the file; one domain may have two selectors', () => {
    const { config, problems } = parseConfig([
      '[[dkim]]', 'domain = "Example.COM."', 'selector = "s2026"', 'key_file = "rsa.key"',
      '[[dkim]]', 'domain = "example.com"', 'selector = "ed"', 'key_file = "ed.key"', 'headers = ["From", "Subject", "from"]',
    ].join('\n'), path.join(dir, 'smarthost.toml'));
    assert.deepEqual(problems, []);
    const [rsa, ed] = config!.dkim;
    assert.deepEqual({ ...rsa!, key: rsa!.key.asymmetricKeyType }, {
      domain: 'example.com', selector: 's2026', keyFile: path.join(dir, 'rsa.key'), key: 'rsa', algorithm: 'rsa-sha256', bits: 1024, headers: DEFAULT_SIGNED_HEADERS,
    });
    assert.equal(ed!.algorithm, 'ed25519-sha256');
    assert.deepEqual(ed!.headers, ['from', 'subject']);
    assert.ok(Object.isFrozen(config!.dkim) && Object.isFrozen(ed) && Object.isFrozen(ed!.headers));
  });

  it('has none by default', () => {
    assert.deepEqual(parseConfig('', path.join(dir, 'smarthost.toml')).config!.dkim, []);
  });

  it('names the line of a bad domain or selector, and refuses a non-table', () => {
    const bad = parseConfig(['[[dkim]]', 'domain = "exa mple.com"', 'selector = "-s"', 'key_file = "ed.key"'].join('\n'), path.join(dir, 'smarthost.toml'));
    assert.deepEqual(bad.problems.map((p) => [p.line, p.message]), [
      [2, 'dkim[0].domain = "exa mple.com" is not a domain name'],
      [3, 'dkim[0].selector = "-s" is not a DNS label'],
    ]);
    const table = parseConfig('[dkim]\ndomain = "example.com"', path.join(dir, 'smarthost.toml'));
    assert.match(table.problems[0]!.fix, /write \[\[dkim\]\]/);
  });
});
