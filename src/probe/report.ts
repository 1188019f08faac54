// How a probe is shown: one line per step with ✓ / ✗ (and - for a step not run), the
// diagnosis and fix indented under it; or the whole report as one JSON object for scripts.
// A route with several URLs gets one section per URL, headed by it, and a summary line.
import type { RouteReport, TargetReport } from './url-walk.js';
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

function failedStep(r: ProbeReport): StepResult | undefined {
  return r.steps.find((s) => !s.ok && !s.skipped);
}

function body(r: ProbeReport): string[] {
  const failed = failedStep(r);
  return [...r.steps.flatMap(stepLines), failed ? `FAILED at ${failed.step}` : 'OK: every step passed'];
}

export function formatText(r: ProbeReport): string {
  return [`probe ${r.route === r.target ? r.target : `${r.route}: ${r.target}`} (tls = "${r.tls}")`, ...body(r), ''].join('\n');
}

/** "primary 2 of 3: smtp://…" — the heading of one URL's section. */
function heading(t: TargetReport, all: readonly TargetReport[]): string {
  const same = all.filter((x) => x.role === t.role);
  return `== ${t.role} ${same.indexOf(t) + 1} of ${same.length}: ${t.target} (tls = "${t.tls}") ==`;
}

/** The last line: which URL mail would use first, or why none. */
export function routeSummary(r: RouteReport): string {
  const failures = r.targets.filter((t) => !t.ok).map((t) => `${t.target} failed at ${failedStep(t)?.step ?? '?'}`);
  const rest = failures.length ? ` (${failures.join('; ')})` : '';
  if (r.ok) return `OK: mail would use ${r.first} first${rest}`;
  if (r.first) return `FAILED: no primary URL passed; mail would go to the fallback ${r.first} only after every primary URL defers${rest}`;
  return `FAILED: no URL passed; mail to ${r.route} would be deferred${rest}`;
}

export function formatRouteText(r: RouteReport): string {
  const primary = r.targets.filter((t) => t.role === 'primary').length;
  const fallback = r.targets.length - primary;
  return [
    `probe ${r.route}: ${r.targets.length} URLs (${primary} primary${fallback ? `, ${fallback} fallback` : ''}), in the order delivery tries them`,
    ...r.targets.flatMap((t) => ['', heading(t, r.targets), ...body(t)]),
    '',
    routeSummary(r),
    '',
  ].join('\n');
}

export function formatJson(r: ProbeReport | RouteReport): string {
  return JSON.stringify(r) + '\n';
}
