// The registry renders the exact Prometheus text format 0.0.4: HELP/TYPE
// lines, escaping, cumulative histogram buckets ending in +Inf, _sum, _count.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, escapeHelp, escapeLabelValue, formatValue } from './registry.js';

describe('Registry.render', () => {
  it('renders counters and gauges exactly, unlabeled ones from 0', () => {
    const r = new Registry();
    const sent = r.counter('mail_sent_total', 'Mails sent', ['route', 'status']);
    r.counter('auth_failures_total', 'Failed logins');
    const open = r.gauge('conns', 'Open connections', ['listener']);
    sent.inc({ route: 'relay', status: 'sent' });
    sent.inc({ status: 'sent', route: 'relay' }, 2);
    sent.inc({ route: 'mx', status: 'deferred' });
    open.inc({ listener: 'a' });
    open.inc({ listener: 'a' });
    open.dec({ listener: 'a' });
    assert.equal(r.render(), [
      '# HELP mail_sent_total Mails sent',
      '# TYPE mail_sent_total counter',
      'mail_sent_total{route="relay",status="sent"} 3',
      'mail_sent_total{route="mx",status="deferred"} 1',
      '# HELP auth_failures_total Failed logins',
      '# TYPE auth_failures_total counter',
      'auth_failures_total 0',
      '# HELP conns Open connections',
      '# TYPE conns gauge',
      'conns{listener="a"} 1',
      '',
    ].join('\n'));
  });

  it('escapes help text and label values', () => {
    const r = new Registry();
    r.gauge('odd', 'A \\ backslash\nand "quotes" in help', ['path']).set({ path: 'C:\\dir\n"x"' }, 1.5);
    assert.equal(r.render(), [
      '# HELP odd A \\\\ backslash\\nand "quotes" in help',
      '# TYPE odd gauge',
      'odd{path="C:\\\\dir\\n\\"x\\""} 1.5',
      '',
    ].join('\n'));
    assert.equal(escapeHelp('a\\b\nc"'), 'a\\\\b\\nc"');
    assert.equal(escapeLabelValue('a\\b\nc"'), 'a\\\\b\\nc\\"');
  });

  it('renders histogram buckets cumulatively with +Inf, _sum and _count', () => {
    const r = new Registry();
    const h = r.histogram('wait_seconds', 'Wait', [0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 3, 100]) h.observe({}, v);
    assert.equal(r.render(), [
      '# HELP wait_seconds Wait',
      '# TYPE wait_seconds histogram',
      'wait_seconds_bucket{le="0.1"} 2', // 0.1 itself falls in le="0.1"
      'wait_seconds_bucket{le="1"} 3',
      'wait_seconds_bucket{le="10"} 4',
      'wait_seconds_bucket{le="+Inf"} 5',
      'wait_seconds_sum 103.65',
      'wait_seconds_count 5',
      '',
    ].join('\n'));
  });

  it('puts le after the other labels of a labeled histogram', () => {
    const r = new Registry();
    r.histogram('t', 'T', [1], ['route']).observe({ route: 'x' }, 2);
    assert.match(r.render(), /^t_bucket\{route="x",le="1"\} 0\nt_bucket\{route="x",le="\+Inf"\} 1\nt_sum\{route="x"\} 2\nt_count\{route="x"\} 1$/m);
  });

  it('computes a gauge at scrape time through its callback', () => {
    const r = new Registry();
    let n = 0;
    r.gauge('depth', 'Depth', ['state'], (g) => { n += 1; g.set({ state: 'active' }, n * 10); });
    assert.match(r.render(), /^depth\{state="active"\} 10$/m);
    assert.match(r.render(), /^depth\{state="active"\} 20$/m);
  });

  it('spells special values as Go does', () => {
    assert.deepEqual([Infinity, -Infinity, NaN, 0.001, 86_400].map(formatValue), ['+Inf', '-Inf', 'NaN', '0.001', '86400']);
  });
});

describe('Registry: misuse is a bug and throws', () => {
  it('refuses wrong labels, negative increments, bad names and buckets, duplicates', () => {
    const r = new Registry();
    const c = r.counter('c_total', 'C', ['route']);
    assert.throws(() => c.inc({}), /takes labels \{route\}/);
    assert.throws(() => c.inc({ route: 'a', extra: 'b' }), /takes labels/);
    assert.throws(() => c.inc({ route: 'a' }, -1), /only goes up/);
    assert.throws(() => r.counter('c_total', 'again'), /registered twice/);
    assert.throws(() => r.gauge('bad-name', 'x'), /bad metric name/);
    assert.throws(() => r.gauge('g', 'x', ['__reserved']), /bad label name/);
    assert.throws(() => r.histogram('h1', 'x', [1, 1]), /strictly increasing/);
    assert.throws(() => r.histogram('h2', 'x', []), /strictly increasing/);
    assert.throws(() => r.histogram('h3', 'x', [1], ['le']), /bucket label/);
  });
});
