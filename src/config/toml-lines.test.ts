// indexLines must put every config problem on the line the user wrote the key
// on: top-level keys, [table] keys, [[array]] entries by index, inline tables,
// and keys after multi-line values, without being fooled by what sits inside
// values and comments.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { indexLines } from './toml-lines.js';

/** Joins lines so that the line numbers in each test read off the array index + 1. */
const toml = (...lines: string[]) => lines.join('\n');

describe('indexLines', () => {
  it('finds top-level keys', () => {
    const at = indexLines(toml(
      '# smarthost.toml',               // 1
      'hostname = "relay.example.com"', // 2
      '',                               // 3
      'data_dir = "/var/lib/smarthost"', // 4
    ));
    assert.equal(at('hostname'), 2);
    assert.equal(at('data_dir'), 4);
    assert.equal(at('nothing_here'), undefined);
  });

  it('finds [table] keys and falls back to the table line for keys not written', () => {
    const at = indexLines(toml(
      'hostname = "a"',                 // 1
      '[relay]',                        // 2
      'url = "smtp://smtp.example.com:587"', // 3
      '  tls = "verify"   # indented',  // 4
      '',                               // 5
      '[queue]',                        // 6
      'lifetime = "5d"',                // 7
    ));
    assert.equal(at('relay'), 2);
    assert.equal(at('relay.url'), 3);
    assert.equal(at('relay.tls'), 4);
    assert.equal(at('relay.username'), 2, 'a missing key is reported on its table');
    assert.equal(at('queue.lifetime'), 7);
    assert.equal(at('queue.retry_min'), 6);
    assert.equal(at('limits.message_size'), undefined, 'no [limits] table, no line');
  });

  it('numbers [[listen]] entries in order: listen[1].tls is in the second section', () => {
    const at = indexLines(toml(
      '[[listen]]                 # local programs', // 1
      'address = "127.0.0.1:25"',                 // 2
      'tls = "none"',                             // 3
      '',                                         // 4
      '[[listen]]',                               // 5
      'address = "0.0.0.0:443"',                  // 6
      'tls = "starttls-required"',                // 7
      '',                                         // 8
      '[[route]]',                                // 9
      'url = "smtp://10.0.0.5:25"',               // 10
      '',                                         // 11
      '[[listen]]',                               // 12
      'address = "0.0.0.0:465"',                  // 13
    ));
    assert.equal(at('listen[0]'), 1);
    assert.equal(at('listen[0].address'), 2);
    assert.equal(at('listen[0].tls'), 3);
    assert.equal(at('listen[1]'), 5);
    assert.equal(at('listen[1].address'), 6);
    assert.equal(at('listen[1].tls'), 7);
    assert.equal(at('listen[1].auth'), 5, 'missing key: the line of its own [[listen]]');
    assert.equal(at('route[0].url'), 10);
    assert.equal(at('listen[2].address'), 13, 'a later [[listen]] continues the count across other tables');
    assert.equal(at('listen[3].address'), undefined);
  });

  it('places keys of inline tables on the line of the table', () => {
    const at = indexLines(toml(
      '[local]',                                                       // 1
      'domains = ["relay.example.com", "localhost"]',                  // 2
      'aliases = { root = "admin@example.com", postmaster = "root" }', // 3
      'maildir = "/var/mail/{user}"',                                  // 4
    ));
    assert.equal(at('local.aliases'), 3);
    assert.equal(at('local.aliases.root'), 3);
    assert.equal(at('local.aliases.postmaster'), 3);
    assert.equal(at('local.root'), 1, '"root = " inside the inline table is not a key of [local]');
    assert.equal(at('local.maildir'), 4);
  });

  it('understands quoted keys, dotted keys and dotted table names', () => {
    const at = indexLines(toml(
      'limits.message_size = "25MB"',                   // 1
      '[rewrite.senders]',                              // 2
      '"@relay.localdomain" = "alerts@example.com"',    // 3
      "'@other.example' = \"x@example.com\"",           // 4
      '[ relay ]',                                      // 5
      'url = "smtp://a:25"',                            // 6
    ));
    assert.equal(at('limits.message_size'), 1);
    assert.equal(at('rewrite.senders'), 2);
    assert.equal(at('rewrite.senders.@relay.localdomain'), 3);
    assert.equal(at('rewrite.senders.@other.example'), 4);
    assert.equal(at('relay.url'), 6);
  });

  it('does not read keys or tables out of multi-line arrays, and counts lines after them', () => {
    const at = indexLines(toml(
      '[[listen]]',                       // 1
      'address = "127.0.0.1:25"',         // 2
      'trusted_networks = [',             // 3
      '  "127.0.0.0/8",   # loopback',    // 4
      '  "::1/128",',                     // 5
      ']',                                // 6
      'tls = "none"',                     // 7
      '[local]',                          // 8
      'domains = [',                      // 9
      '  ["nested"],',                    // 10 would look like a [table] header
      '  [',                              // 11
      '    "deeper",',                    // 12
      '  ],',                             // 13
      '  "x = 1",',                       // 14 would look like a key
      ']',                                // 15
      'maildir = "/var/mail/{user}"',     // 16
    ));
    assert.equal(at('listen[0].trusted_networks'), 3);
    assert.equal(at('listen[0].tls'), 7);
    assert.equal(at('local'), 8);
    assert.equal(at('local.domains'), 9);
    assert.equal(at('local.maildir'), 16);
    assert.equal(at('nested'), undefined);
    assert.equal(at('local.x'), 8, 'nothing was indexed for "x = 1" inside the array');
  });

  it('ignores keys and tables written in comments', () => {
    const at = indexLines(toml(
      '[relay]',                     // 1
      '# tls = "none"',              // 2
      '# [queue]',                   // 3
      'tls = "may"',                 // 4
    ));
    assert.equal(at('relay.tls'), 4);
    assert.equal(at('queue'), undefined);
  });

  it('counts CRLF line endings like LF', () => {
    const at = indexLines('hostname = "a"\r\n[relay]\r\nurl = "smtp://a:25"\r\n\r\ntls = "may"\r\n');
    assert.equal(at('relay.url'), 3);
    assert.equal(at('relay.tls'), 5);
  });

  it('is not thrown off by an unbalanced bracket inside a string or a comment', () => {
    const at = indexLines(toml(
      '[relay]',                                    // 1
      'url = "[smtp.example.com:587"   # typo',     // 2 a user mistake that must be reported on a line
      'tls = "may"',                                // 3
      '[queue]',                                    // 4
      'lifetime = "5d"   # was [4d',                // 5
      'retry_min = "5m"',                           // 6
      '[limits]',                                   // 7
      'message_size = "25MB"',                      // 8
    ));
    assert.equal(at('relay.url'), 2);
    assert.equal(at('relay.tls'), 3);
    assert.equal(at('queue'), 4);
    assert.equal(at('queue.retry_min'), 6);
    assert.equal(at('limits.message_size'), 8);
  });

  it('does not read keys or tables out of multi-line strings', () => {
    const at = indexLines(toml(
      '[relay]',                 // 1
      'url = "smtp://a:25"',     // 2
      'note = """',              // 3
      '[queue]',                 // 4 text, not a table
      'tls = "none"',            // 5 text, not a key
      '"""',                     // 6
      'tls = "may"',             // 7
      "banner = '''",            // 8
      '[[listen]]',              // 9 text
      "'''",                     // 10
      'username = "u"',          // 11
    ));
    assert.equal(at('queue'), undefined);
    assert.equal(at('listen[0]'), undefined);
    assert.equal(at('relay.note'), 3);
    assert.equal(at('relay.tls'), 7);
    assert.equal(at('relay.username'), 11);
  });
});
