// Issue 19: route quotas and provider replies, end to end with the real daemon and the test
// upstream. A used-up quota defers (never bounces) with a log line naming the quota and when
// it resets; the count survives kill -9 and a restart (data_dir/quota.json); the deferred
// recipient goes by itself once the rolling window frees a place. With a Gmail or Microsoft
// preset, 4.7.x at any stage slows the route down, and Microsoft's documented daily-limit 5.2.0
// is deferred rather than bounced.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch, removeDir, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/wait.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../peers/upstream.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function upstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const up = await startUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}

async function daemon(toml: string): Promise<RunningDaemon> {
  const d = await startDaemon({ toml: `[[listen]]\naddress = "127.0.0.1:0"\n${toml}\n[queue]\nretry_min = "1s"\nretry_max = "2s"\n` });
  cleanups.push(async () => { await d.stop(); removeDir(d.dir); });
  return d;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a route quota', () => {
  it('defers what is over it with a log line naming the quota and its reset; kill -9 and a restart keep it used up', async () => {
    const up = await upstream();
    const d = await daemon(`[relay]\nurl = "${up.url}"\ntls = "none"\nquota = "2/1d"`);
    const firstSent = Date.now();
    for (const to of ['a@example.net', 'b@example.net']) {
      const id = await submit(d.ports[0]!, 'alice@client.test', [to]);
      await d.waitForLog(new RegExp(`${id}: removed`));
    }
    const over = await submit(d.ports[0]!, 'alice@client.test', ['c@example.net']);
    const line = await d.waitForLog(new RegExp(`${over}: to=<c@example\\.net>, relay=none, .*dsn=4\\.4\\.5, status=deferred \\(daily quota of 2 recipients for \\[relay\\] used up; resets (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d) UTC\\)`));
    const resets = Date.parse(`${/resets (\S+ \S+) UTC/.exec(line)![1]}:00Z`);
    assert.ok(resets >= firstSent + 86_400_000 - 60_000 && resets <= Date.now() + 86_400_000 + 60_000, `resets one day after the first recipient: ${line}`);
    assert.equal(up.messages.length, 2, 'the upstream got the two within the quota');
    assert.doesNotMatch(d.logs(), /status=bounced|non-delivery/);
    assert.match(d.cli(['check']).stdout, /^ {2}quota \[relay\]: 2 of 2 recipients used in the last 1d$/m, 'check shows the count');
    const quotaFile = path.join(d.dataDir, 'quota.json');
    assert.equal(fs.statSync(quotaFile).mode & 0o777, 0o600);

    await d.kill9();
    const again = await launch(d.dir, d.configFile);
    cleanups.push(async () => { await again.stop(); });
    assert.equal(again.cli(['queue', 'flush', over]).status, 0);
    await again.waitForLog(new RegExp(`${over}: to=<c@example\\.net>, relay=none, .*status=deferred \\(daily quota of 2 recipients for \\[relay\\] used up; resets ${esc(/resets (\S+ \S+ UTC)/.exec(line)![1]!)}\\)`));
    const fresh = await submit(again.ports[0]!, 'alice@client.test', ['d@example.net']);
    await again.waitForLog(new RegExp(`${fresh}: to=<d@example\\.net>, relay=none, .*status=deferred \\(daily quota of 2 recipients`));
    assert.equal(up.messages.length, 2, 'nothing more went out after the restart');
    assert.match(again.cli(['check']).stdout, /^ {2}quota \[relay\]: 2 of 2 recipients used in the last 1d$/m);
  });

  it('sends what fits of a message, and the rest by itself once the window frees a place', async () => {
    const up = await upstream();
    const d = await daemon(`[[route]]\nname = "m365"\ndomains = ["example.net"]\nurl = "${up.url}"\ntls = "none"\nquota = "2/3s"`);
    const id = await submit(d.ports[0]!, 'alice@client.test', ['a@example.net', 'b@example.net', 'c@example.net']);
    await d.waitForLog(new RegExp(`${id}: to=<c@example\\.net>, relay=none, .*status=deferred \\(quota of 2 recipients per 3s for route m365 used up; resets \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\)`));
    const [first] = await up.waitForMessages(1);
    assert.deepEqual([...first!.to].sort(), ['a@example.net', 'b@example.net'], 'the first two went in one transaction');
    await d.waitForLog(new RegExp(`${id}: to=<c@example\\.net>, relay=127\\.0\\.0\\.1.*status=sent`), 15_000);
    await d.waitForLog(new RegExp(`${id}: removed`));
    assert.deepEqual(up.messages.map((m) => m.to), [first!.to, ['c@example.net']]);
    assert.doesNotMatch(d.logs(), /status=bounced/);
  });
});

describe('provider replies with a preset', () => {
  const throttled = '451 4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail';

  it('preset = "gmail": 4.7.x after DATA slows the route down: that connection is closed, the next message waits and opens a new one', async () => {
    const up = await upstream({ faults: [{ stage: 'dot', action: 'reply', reply: throttled, times: 1 }] });
    const d = await daemon(`[relay]\npreset = "gmail"\nurl = "${up.url}"\ntls = "none"`);
    const first = await submit(d.ports[0]!, 'alice@client.test', ['a@example.net']);
    await d.waitForLog(new RegExp(`${first}: to=<a@example\\.net>, .*status=deferred \\(.*4\\.7\\.28`));
    const second = await submit(d.ports[0]!, 'alice@client.test', ['b@example.net']);
    await d.waitForLog(new RegExp(`${second}: to=<b@example\\.net>, .*status=sent`), 15_000);
    await waitFor(() => up.sessions[0]!.commands.at(-1) === 'QUIT', 'the throttled session ended with QUIT');
    assert.equal(up.sessions[0]!.commands.filter((c) => /^MAIL FROM/i.test(c)).length, 1, 'no second message on the throttled connection');
    assert.ok(up.sessions.length >= 2, 'the next message came on a new connection');
  });

  it('without a preset the same reply concerns one message: the connection is kept for the next', async () => {
    const up = await upstream({ faults: [{ stage: 'dot', action: 'reply', reply: throttled, times: 1 }] });
    const d = await daemon(`[relay]\nurl = "${up.url}"\ntls = "none"`);
    const first = await submit(d.ports[0]!, 'alice@client.test', ['a@example.net']);
    await d.waitForLog(new RegExp(`${first}: to=<a@example\\.net>, .*status=deferred \\(.*4\\.7\\.28`));
    const second = await submit(d.ports[0]!, 'alice@client.test', ['b@example.net']);
    await d.waitForLog(new RegExp(`${second}: to=<b@example\\.net>, .*status=sent`), 15_000);
    assert.equal(up.sessions.length, 1, `one connection carried both: ${up.sessions.map((s) => s.commands.join(' ')).join(' | ')}`);
  });

  it('preset = "microsoft365": the documented daily-limit reply 554 5.2.0 SubmissionQuotaExceeded is deferred, never bounced', async () => {
    const reply = '554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception';
    const up = await upstream({ faults: [{ stage: 'dot', action: 'reply', reply, times: 1 }] });
    const d = await daemon(`[relay]\npreset = "microsoft365"\nurl = "${up.url}"\ntls = "none"`);
    const id = await submit(d.ports[0]!, 'alice@client.test', ['a@example.net']);
    await d.waitForLog(new RegExp(`${id}: to=<a@example\\.net>, .*dsn=4\\.2\\.0, status=deferred \\(.*SubmissionQuotaExceededException.*deferred, not bounced\\)`));
    await d.waitForLog(new RegExp(`${id}: to=<a@example\\.net>, .*status=sent`), 15_000);
    assert.doesNotMatch(d.logs(), /status=bounced|non-delivery/);
  });
});
