// Polling for a condition in tests: `tries` checks `everyMs` apart (10 s by default: CI machines
// run two test files at once on two cores), then a
// failure that says what was awaited (a function, for context read late).
import assert from 'node:assert/strict';

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string | (() => string), tries = 1000, everyMs = 10): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
}
