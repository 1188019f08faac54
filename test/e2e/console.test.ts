// The web console in a real browser (issue 18): Debian's Chromium, headless, driven by
// playwright-core against a real daemon. Signs in with a token, finds a message, holds and
// releases it, deletes another, runs the upstream check, and takes the screenshots the
// README shows (into docs/img/ when SMARTHOST_SCREENSHOTS=1, else into a temporary folder).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { removeDir, ROOT, startDaemon, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import { apiOf, type Api } from '../helpers/api.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type Upstream } from '../peers/upstream.js';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

describe('web console', () => {
  let d: RunningDaemon;
  let api: Api;
  let up: Upstream;
  let browser: Browser;
  let page: Page;
  let token: string;
  const shots = process.env.SMARTHOST_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'img') : tempDir('smarthost-shots-');
  const ids: Record<string, string> = {};

  before(async () => {
    up = await startUpstream({});
    cleanups.push(() => up.close());
    d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n[http]\naddress = "127.0.0.1:0"\n[relay]\nurl = "${up.url}"\ntls = "none"\n[queue]\ndefer_delivery = true\n` });
    cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
    api = await apiOf(d);
    token = api.token('console');
    for (const [key, from, to, subject] of [
      ['invoice', 'billing@example.com', 'bob@example.net', 'Invoice 42'],
      ['report', 'cron@relay.test', 'ops@example.org', 'Nightly report'],
      ['reset', 'noreply@example.com', 'carol@example.net', 'Password reset'],
    ] as const) {
      const r = await api.call(token, 'POST', '/api/v1/messages', { from, to, subject, text: `${subject}\n\nHello.` });
      assert.equal(r.status, 202, r.text);
      ids[key] = r.json.id;
    }
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    cleanups.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('dialog', (dialog) => void dialog.accept());
  });

  const stateOf = async (id: string) => {
    const m = (await api.call(token, 'GET', '/api/v1/queue')).json.find((x: { id: string }) => x.id === id);
    return m ? (m.held ? 'held' : m.recipients[0].state) : 'gone';
  };

  it('refuses a wrong token and signs in with a right one; the queue shows every message', async () => {
    await page.goto(api.base + '/');
    await page.fill('#token', 'shk_wrong');
    await page.click('button[type=submit]');
    await page.waitForSelector('#login-error:has-text("refused")');
    await page.fill('#token', token);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector(`tr[data-id="${ids.invoice}"]`);
    assert.equal(await page.locator('#queue-rows tr[data-id]').count(), 3);
    assert.match(await page.textContent('#queue-status') ?? '', /3 messages/);
    await page.screenshot({ path: path.join(shots, 'console-queue.png') });
  });

  it('finds a message by address and shows its recipients, header and body', async () => {
    await page.fill('#search', 'ops@example');
    await waitFor(async () => (await page.locator('#queue-rows tr[data-id]').count()) === 1, 'the search to leave one row');
    await page.click(`tr[data-id="${ids.report}"]`);
    await page.waitForSelector(`#message-title:has-text("${ids.report}")`);
    assert.match(await page.textContent('#message-headers') ?? '', /Subject: Nightly report/);
    assert.match(await page.textContent('#message-rcpts') ?? '', /ops@example\.org\s*queued/);
    await page.screenshot({ path: path.join(shots, 'console-message.png'), fullPage: true });
  });

  it('holds and releases the message shown, and the daemon agrees', async () => {
    await page.click('[data-one=hold]');
    await page.waitForSelector('#toast:has-text("1 message held")');
    assert.equal(await stateOf(ids.report!), 'held');
    await page.waitForSelector('#message-title:has-text("(held)")');
    await page.click('[data-one=release]');
    await page.waitForSelector('#toast:has-text("1 message released")');
    assert.equal(await stateOf(ids.report!), 'queued');
  });

  it('deletes a selected message from the table', async () => {
    await page.fill('#search', '');
    await page.locator('#search').dispatchEvent('input');
    await page.check(`tr[data-id="${ids.reset}"] input[type=checkbox]`);
    await page.click('[data-bulk=delete]');
    await page.waitForSelector('#toast:has-text("1 message deleted")');
    assert.equal(await stateOf(ids.reset!), 'gone');
    await waitFor(async () => (await page.locator('#queue-rows tr[data-id]').count()) === 2, 'the deleted row to go');
    assert.match(d.logs(), new RegExp(`token=console client=\\[127\\.0\\.0\\.1\\] DELETE /api/v1/queue/${ids.reset}: 200`));
  });

  it('retries a message now, which the upstream receives, and the live log shows its delivery', async () => {
    await page.click('.tab[data-tab=log]');
    await page.waitForSelector('#log-state:has-text("connected")');
    await page.click('.tab[data-tab=queue]');
    await page.click(`tr[data-id="${ids.invoice}"]`);
    await page.click('[data-one=flush]');
    const [m] = await up.waitForMessages(1);
    assert.deepEqual(m!.to, ['bob@example.net']);
    await page.click('.tab[data-tab=log]');
    await page.waitForSelector(`#log-lines:has-text("${ids.invoice}: to=<bob@example.net>")`);
    assert.match(await page.textContent('#log-lines') ?? '', /status=sent/);
    await page.screenshot({ path: path.join(shots, 'console-log.png') });
  });

  it('runs the upstream check and shows each step with a mark', async () => {
    await page.click('.tab[data-tab=probe]');
    await page.selectOption('#probe-route', 'relay');
    await page.click('#probe-form button[type=submit]');
    await page.waitForSelector('#probe-state:has-text("every step passed")');
    const steps = await page.locator('#probe-steps li.step').allTextContents();
    assert.ok(steps.some((s) => /^✓connect/.test(s)), steps.join('\n'));
    assert.ok(steps.some((s) => /^✓mail/.test(s)), steps.join('\n'));
    await page.screenshot({ path: path.join(shots, 'console-probe.png') });
  });

  it('shows a failed upstream check with its diagnosis and fix', async () => {
    await up.stop();
    await page.click('#probe-form button[type=submit]');
    await page.waitForSelector('#probe-state:has-text("a step failed")');
    assert.match(await page.textContent('#probe-steps') ?? '', /✗connect[\s\S]*Fix: /);
    await up.restart();
  });

  it('lists the suppressed recipients and removes one', async () => {
    fs.writeFileSync(path.join(d.dataDir, 'suppressions.json'), JSON.stringify([{ address: 'ghost@example.net', dsn: '5.1.1', reply: '550 5.1.1 User unknown', since: new Date().toISOString(), expires: new Date(Date.now() + 86_400_000).toISOString(), queueId: ids.reset }]));
    await page.click('.tab[data-tab=suppressions]');
    await page.waitForSelector('tr[data-address="ghost@example.net"]');
    await page.click('tr[data-address="ghost@example.net"] button');
    await page.waitForSelector('#toast:has-text("ghost@example.net removed")');
    assert.deepEqual((await api.call(token, 'GET', '/api/v1/suppressions')).json, []);
  });

  it('runs the configuration check', async () => {
    await page.click('.tab[data-tab=check]');
    await page.click('#check-run');
    await page.waitForSelector('#check-state:has-text("smarthost.toml")');
    assert.doesNotMatch(await page.textContent('#check-state') ?? '', /error/);
  });
});
