// What an import carried over, what it did not and why, and notes a user must
// act on. The mapping code only records; `formatReport` prints, so the unit
// tests can look at the entries and the CLI prints the same words every time.
// The same entry recorded twice (a CA file shared by the relay and a route) is kept once.

export interface Carried { readonly from: string; readonly to: string }
export interface Skipped { readonly setting: string; readonly why: string }

export class ImportReport {
  readonly carried: Carried[] = [];
  readonly skipped: Skipped[] = [];
  readonly notes: string[] = [];

  /** `from` (the old setting, as written) became `to` (the smarthost key and value). */
  carry(from: string, to: string): void {
    if (!this.carried.some((c) => c.from === from && c.to === to)) this.carried.push({ from, to });
  }

  /** `setting` has no counterpart, or was left out on purpose; `why` says which and what to do. */
  skip(setting: string, why: string): void {
    if (!this.skipped.some((s) => s.setting === setting && s.why === why)) this.skipped.push({ setting, why });
  }

  /** Something the user must know or do (a file to provide, a behaviour that changes). */
  note(text: string): void { if (!this.notes.includes(text)) this.notes.push(text); }
}

export function formatReport(r: ImportReport, source: string, output: string): string {
  const lines = [`smarthost import: ${source} -> ${output}`, '', 'carried over:'];
  for (const c of r.carried) lines.push(`  ${c.from} → ${c.to}`);
  lines.push('', 'not carried over:');
  if (!r.skipped.length) lines.push('  (nothing)');
  for (const s of r.skipped) lines.push(`  ${s.setting}: ${s.why}`);
  if (r.notes.length) {
    lines.push('', 'notes:');
    for (const n of r.notes) lines.push(`  - ${n}`);
  }
  return lines.join('\n') + '\n';
}
