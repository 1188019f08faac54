// How a probe is shown: one line per step with ✓ / ✗ (and - for a step not run), the
// diagnosis and fix indented under it; or the whole report as one JSON object for scripts.
import type { ProbeReport, StepResult } from './steps.js';

const WIDTH = 'certificate '.length;

function mark(s: StepResult): string {
  if (s.skipped) return '-';
  return s.ok ? '✓' : '✗';
}

function stepLines(s: StepResult): string[] {
  const lines = [`${mark(s)} ${s.step.padEnd(WIDTH)}${s.detail}`];
  if (s.diagnosis) lines.push(`    → ${s.diagnosis}`);
  if (s.fix) lines.push(`      fix: ${s.fix}`);
  return lines;
}

export function formatText(r: ProbeReport): string {
  const failed = r.steps.find((s) => !s.ok && !s.skipped);
  return [
    `probe ${r.route === r.target ? r.target : `${r.route}: ${r.target}`} (tls = "${r.tls}")`,
    ...r.steps.flatMap(stepLines),
    failed ? `FAILED at ${failed.step}` : 'OK: every step passed',
    '',
  ].join('\n');
}

export function formatJson(r: ProbeReport): string {
  return JSON.stringify(r) + '\n';
}
