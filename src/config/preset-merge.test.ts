import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.js';
import { suggestPreset } from './preset-merge.js';
import { PRESET_NAMES } from './presets.js';

const parse = (toml: string) => parseConfig(toml, '/etc/smarthost/smarthost.toml');
const relay = (toml: string) => {
  const r = parse(`[relay]\n${toml}\n`);
  assert.ok(r.config?.relay, r.problems.map((p) => `${p.message} / ${p.fix}`).join('\n'));
  return r.config.relay;
};
const problems = (toml: string) => parse(toml).problems.map((p) => `${p.line}: ${p.message} | ${p.fix}`);

describe('preset = "…"', () => {
  it('fills url, tls, mechanisms, rate, concurrency and quota; the user\'s keys win', () => {
    const u = relay('preset = "microsoft365"\nusername = "scanner@example.com"\npassword_env = "P"\nconcurrency = 1\nrate = "10/1m"');
    assert.equal(u.url, 'smtp://smtp.office365.com:587');
    assert.equal(u.tls, 'verify');
    assert.deepEqual(u.mechanisms, ['LOGIN']);
    assert.equal(u.concurrency, 1);
    assert.deepEqual(u.rate, { count: 10, windowMs: 60_000 });
    assert.deepEqual(u.quota, { count: 10_000, windowMs: 86_400_000 });
    assert.deepEqual(u.preset!.fields.map((f) => `${f.key}:${f.from}`), ['url:preset', 'tls:preset', 'mechanisms:preset', 'rate:user', 'concurrency:user', 'quota:preset']);
  });

  it('"0" turns off a preset\'s rate and quota', () => {
    const u = relay('preset = "microsoft365"\nrate = "0"\nquota = "0"');
    assert.equal(u.rate, undefined);
    assert.equal(u.quota, undefined);
  });

  it('with auth = "oauth2" the provider comes from the preset and the mechanism stays XOAUTH2', () => {
    const u = relay('preset = "microsoft365"\nauth = "oauth2"\ntenant = "contoso.onmicrosoft.com"\nusername = "a@contoso.com"\nclient_id = "id"\nrefresh_token_file = "/r"');
    assert.deepEqual(u.mechanisms, ['XOAUTH2']);
    assert.equal(u.oauth?.provider, 'microsoft');
    assert.equal(u.oauth?.tokenUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
  });

  it('sendgrid fills the username "apikey"; amazon-ses builds its host from region', () => {
    assert.equal(relay('preset = "sendgrid"\npassword_env = "P"').username, 'apikey');
    assert.equal(relay('preset = "amazon-ses"\nregion = "ap-southeast-2"').host, 'email-smtp.ap-southeast-2.amazonaws.com');
    assert.equal(relay('preset = "amazon-ses"\nurl = "smtp://email-smtp-fips.us-east-1.amazonaws.com:587"').host, 'email-smtp-fips.us-east-1.amazonaws.com', 'an own url needs no region');
  });

  it('reports a bad preset or region once, with the fix, and no "has no url" after it', () => {
    assert.deepEqual(problems('[relay]\npreset = "amazon-ses"\nregion = "Frankfurt"\n'), ['3: relay.region = "Frankfurt" is not a region name | write region = "eu-west-1"']);
    assert.deepEqual(problems('[relay]\npreset = 365\n'), [`2: unknown preset 365 in relay.preset | write one of: ${PRESET_NAMES.join(', ')}; or remove preset and set url yourself`]);
    assert.match(problems('[relay]\npreset = "toString"\n')[0]!, /unknown preset "toString"/);
    assert.deepEqual(problems('[relay]\nurl = "smtp://a.example:25"\nregion = "eu-west-1"\n'), ['3: relay.region only applies with a preset whose host depends on it | add preset = "amazon-ses", or remove region']);
  });

  it('a quota must be a rate of recipients', () => {
    assert.deepEqual(problems('[relay]\npreset = "gmail"\nquota = "2000"\n'), ['3: relay.quota: "2000" must be a rate such as "5/10m" (5 per 10 minutes) | write quota = "10000/1d" (at most 10,000 recipients in any 24 hours), or "0" for none']);
    assert.deepEqual(relay('url = "smtp://a.example:25"\nquota = "500/1h"').quota, { count: 500, windowMs: 3_600_000 });
  });

  it('suggests the preset people mean', () => {
    assert.equal(suggestPreset('office365'), 'microsoft365');
    assert.equal(suggestPreset('Microsoft 365'), 'microsoft365');
    assert.equal(suggestPreset('ses'), 'amazon-ses');
    assert.equal(suggestPreset('mailgun_eu'), 'mailgun-eu');
    assert.equal(suggestPreset('postmrak'), 'postmark');
    assert.equal(suggestPreset('exim'), undefined);
  });
});
