// `preset = "NAME"` on [relay] or a [[route]]: the preset's keys (presets.ts) go under the
// user's own, and the merged table is validated as if the user had written it all. What came
// from where is kept, so `check` and `route test` can show the expansion.
import { editDistance, Section, type Table } from './reader.js';
import { PRESETS, PRESET_NAMES, type Preset } from './presets.js';
import type { PresetUse } from './types.js';

/** Names people reach for first, for "did you mean". */
const ALIASES: Readonly<Record<string, string>> = {
  m365: 'microsoft365', office365: 'microsoft365', o365: 'microsoft365', outlook: 'microsoft365', exchange: 'microsoft365',
  hve: 'microsoft365-hve', google: 'gmail', workspace: 'gmail', 'google-workspace': 'gmail', 'gmail-relay': 'google-relay',
  'smtp-relay': 'google-relay', ses: 'amazon-ses', aws: 'amazon-ses', 'aws-ses': 'amazon-ses', twilio: 'sendgrid',
};

/** The closest preset name, or undefined when none is close. */
export function suggestPreset(value: string): string | undefined {
  const v = value.trim().toLowerCase().replace(/[ _]/g, '-');
  if (Object.hasOwn(PRESETS, v)) return v;
  if (Object.hasOwn(ALIASES, v)) return ALIASES[v];
  const best = PRESET_NAMES.map((n) => ({ n, d: editDistance(v, n) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(best.n.length / 3)) ? best.n : undefined;
}

/** A value as it is written in smarthost.toml. */
export function tomlValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  // a table (smol-toml's have no prototype, so String() would throw) as an inline table
  if (typeof v === 'object' && v !== null && !(v instanceof Date)) return `{ ${Object.entries(v).map(([k, x]) => `${k} = ${tomlValue(x)}`).join(', ')} }`;
  return String(v);
}

/**
 * The section to read an upstream from: `s` itself without a preset; with one, a section over
 * the preset's keys overlaid by the user's (same path, so the user's keys keep their lines).
 * A bad preset or region is reported and the user's own keys are read alone.
 */
export function withPreset(s: Section): { section: Section; use?: PresetUse } {
  const raw = s.raw('preset');
  const region = s.raw('region');
  if (raw === undefined) {
    if (region !== undefined) s.problem('region', `${s.at('region')} only applies with a preset whose host depends on it`, 'add preset = "amazon-ses", or remove region');
    return { section: s };
  }
  const preset = typeof raw === 'string' && Object.hasOwn(PRESETS, raw) ? PRESETS[raw] : undefined;
  if (!preset || typeof raw !== 'string') {
    const near = typeof raw === 'string' ? suggestPreset(raw) : undefined;
    const list = PRESET_NAMES.join(', ');
    s.problem('preset', `unknown preset ${JSON.stringify(raw)} in ${s.at('preset')}`, near ? `write preset = "${near}" (known presets: ${list})` : `write one of: ${list}; or remove preset and set url yourself`);
    return { section: s };
  }
  const keys = presetKeys(s, raw, preset, region);
  if (!keys) return { section: s };
  const merged: Table = { ...keys, ...s.table };
  const section = new Section(merged, s.path, s.problems);
  section.raw('preset');
  section.raw('region');
  return { section, use: presetUse(raw, preset, keys, s.table) };
}

/**
 * The preset's keys for this user table: region filled in, OAuth adjusted when the user signs in
 * with a token. undefined after reporting a missing or bad region.
 */
function presetKeys(s: Section, name: string, preset: Preset, region: unknown): Table | undefined {
  const keys: Table = { ...preset.keys };
  if (preset.region) {
    const ok = typeof region === 'string' && new RegExp(preset.region.pattern).test(region);
    if (region === undefined && s.table['url'] === undefined) {
      s.problem('preset', `preset "${name}" needs region: its host name depends on it`, `add region = "${preset.region.example}" (the region your SMTP credentials were made in)`);
      return undefined;
    }
    if (region !== undefined && !ok) {
      s.problem('region', `${s.at('region')} = ${JSON.stringify(region)} is not a region name`, `write region = "${preset.region.example}"`);
      return undefined;
    }
    if (ok) keys['url'] = String(keys['url']).replace('{region}', region as string);
    else delete keys['url']; // the user's own url, no region
  } else if (region !== undefined) {
    s.problem('region', `${s.at('region')} does not apply to preset "${name}"`, name === 'mailgun' ? 'write preset = "mailgun-eu" for the EU region, and remove region' : 'remove region');
    return undefined;
  }
  if (s.table['auth'] === 'oauth2') {
    // token sign-in: the mechanism is XOAUTH2 (the validator's default), and the provider is known
    delete keys['mechanisms'];
    if (preset.oauthProvider && s.table['provider'] === undefined && s.table['token_url'] === undefined) keys['provider'] = preset.oauthProvider;
  }
  return keys;
}

function presetUse(name: string, preset: Preset, keys: Table, user: Table): PresetUse {
  const fields = Object.entries(keys).map(([key, value]) => Object.freeze(user[key] === undefined
    ? { key, value: tomlValue(value), from: 'preset' as const }
    : { key, value: tomlValue(user[key]), from: 'user' as const, presetValue: tomlValue(value) }));
  return Object.freeze({
    name, title: preset.title, fields: Object.freeze(fields), throttle: preset.throttle, temporary: preset.temporary,
    ...(preset.spfInclude ? { spfInclude: preset.spfInclude } : {}),
    ...(preset.spfNote ? { spfNote: preset.spfNote } : {}),
  });
}
