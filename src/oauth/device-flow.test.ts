import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DelegatedOAuthConfig } from '../config/types.js';
import { startOAuthServer } from '../../test/peers/oauth-server.js';
import { DeviceFlowError, deviceLogin } from './device-flow.js';

const closers: Array<() => Promise<void>> = [];
after(async () => { for (const c of closers.splice(0)) await c(); });

const CONFIG: DelegatedOAuthConfig = { route: 'relay', grant: 'refresh_token', tokenUrl: 'https://login.test/token', deviceUrl: 'https://login.test/device', clientId: 'c', refreshTokenFile: '/unused' };

/** A fetch that answers the device endpoint once, then the scripted token answers in order. */
function scripted(tokenAnswers: Array<[number, Record<string, unknown>]>) {
  const calls: string[] = [];
  const fetch = (async (url: string | URL | Request) => {
    calls.push(String(url));
    if (String(url).endsWith('/device')) {
      return new Response(JSON.stringify({ device_code: 'dc', user_code: 'ABCD-EFGH', verification_url: 'https://login.test/activate', expires_in: 600, interval: 5 }), { status: 200 });
    }
    const [status, body] = tokenAnswers.shift() ?? [500, {}];
    return new Response(JSON.stringify(body), { status });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

async function flowError(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { assert.ok(e instanceof DeviceFlowError, String(e)); return e.message; }
  assert.fail('expected the device flow to fail');
}

describe('deviceLogin (RFC 8628)', () => {
  it('shows the URL and code, polls while pending, and returns the refresh token', async () => {
    const oauth = await startOAuthServer({ pendingPolls: 2, interval: 1, clientId: 'c' });
    closers.push(() => oauth.close());
    const lines: string[] = [];
    const waits: number[] = [];
    const token = await deviceLogin({ ...CONFIG, tokenUrl: oauth.tokenUrl, deviceUrl: oauth.deviceUrl }, 'alice@example.com',
      { print: (l) => lines.push(l), sleep: async (ms) => { waits.push(ms); } });
    assert.match(token, /^rt-/);
    assert.match(lines[0]!, /^To sign in alice@example\.com, open http:\/\/127\.0\.0\.1:\d+\/activate and enter the code WDJB-MJHT$/);
    assert.equal(oauth.polls, 3);
    assert.deepEqual(waits, [1000, 1000, 1000], 'the interval the server gave, before every poll');
  });

  it('slows down by 5 s on slow_down (RFC 8628 §3.5)', async () => {
    const { fetch } = scripted([[400, { error: 'slow_down' }], [400, { error: 'authorization_pending' }], [200, { access_token: 'a', refresh_token: 'r' }]]);
    const waits: number[] = [];
    assert.equal(await deviceLogin(CONFIG, 'a@x', { print: () => {}, fetch, sleep: async (ms) => { waits.push(ms); } }), 'r');
    assert.deepEqual(waits, [5000, 10000, 10000]);
  });

  it('explains expired_token, access_denied and a missing refresh token', async () => {
    const opts = (answers: Array<[number, Record<string, unknown>]>) => ({ print: () => {}, fetch: scripted(answers).fetch, sleep: async () => {} });
    assert.match(await flowError(deviceLogin(CONFIG, 'a@x', opts([[400, { error: 'expired_token' }]]))), /code expired before the sign-in was approved; run the command again/);
    assert.match(await flowError(deviceLogin(CONFIG, 'a@x', opts([[400, { error: 'access_denied' }]]))), /sign-in was declined/);
    assert.match(await flowError(deviceLogin({ ...CONFIG, provider: 'microsoft' }, 'a@x', opts([[200, { access_token: 'a' }]]))), /no refresh token; scope must include offline_access/);
  });

  it('stops at the code expiry even while the server says pending', async () => {
    let clock = 0;
    const { fetch } = scripted(Array.from({ length: 1000 }, () => [400, { error: 'authorization_pending' }] as [number, Record<string, unknown>]));
    const msg = await flowError(deviceLogin(CONFIG, 'a@x', { print: () => {}, fetch, now: () => clock, sleep: async (ms) => { clock += ms; } }));
    assert.match(msg, /code expired/);
  });

  it('without a device endpoint says to add device_url', async () => {
    const { deviceUrl: _omit, ...noDevice } = CONFIG;
    assert.match(await flowError(deviceLogin(noDevice, 'a@x', { print: () => {} })), /has no device authorization endpoint; add device_url = /);
  });
});
