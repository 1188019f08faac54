// What a `preset` expanded to, key by key, for `smarthost check` and `smarthost route test`:
// each value marked as the preset's or the user's own (with the preset's beside it).
import type { UpstreamConfig } from '../config/types.js';

export function presetLines(label: string, u: UpstreamConfig, indent = '    '): string[] {
  const p = u.preset;
  if (!p) return [];
  const rows = p.fields.map((f) => [`${f.key} = ${f.value}`, f.from === 'preset' ? 'from the preset' : `yours (the preset has ${f.presetValue})`] as const);
  const width = Math.max(...rows.map((r) => r[0].length));
  return [
    `${indent.slice(2)}${label} preset ${p.name} (${p.title}):`,
    ...rows.map(([kv, from]) => `${indent}${kv.padEnd(width)}  ${from}`),
    ...(p.spfInclude ? [`${indent}SPF of sender domains should include: include:${p.spfInclude}${p.spfNote ? ` (${p.spfNote})` : ''}`] : []),
  ];
}

/** Every upstream with a preset, in route-table order. */
export function allPresetLines(config: { relay?: UpstreamConfig; routes: readonly (UpstreamConfig & { name: string })[] }, indent = '    '): string[] {
  return [
    ...config.routes.flatMap((r) => presetLines(`route ${r.name}`, r, indent)),
    ...(config.relay ? presetLines('relay', config.relay, indent) : []),
  ];
}
