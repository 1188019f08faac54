// oauthLogin against a scripted OAUTHBEARER server (smtp-server has no OAUTHBEARER):
// a refused token is answered with %x01 (RFC 7628 §3.2.3), refreshed once, and tried again.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { startOAuthServer, type OAuthServer } from '../../test/peers/oauth-server.js';
import { oauthLogin } from './smtp-login.js';
import { TokenSource } from './token-source.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

/** A line-based SMTP peer offering only AUTH OAUTHBEARER; records each decoded initial response. */
async function bearerPeer(valid: (token: string) => boolean): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = net.createServer((sock) => {
    let buf = '';
    let challenged = false;
    sock.write('220 peer.test ESMTP\r\n');
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^EHLO /i.test(line)) sock.write('250-peer.test\r\n250 AUTH OAUTHBEARER\r\n');
        else if (challenged) { challenged = false; sock.write(line === 'AQ==' ? '535 5.7.8 Username and Password not accepted\r\n' : '501 5.5.2 expected %x01\r\n'); }
        else if (line.startsWith('AUTH OAUTHBEARER ')) {
          const decoded = Buffer.from(line.slice(17), 'base64').toString('utf8');
          seen.push(decoded);
          const token = /auth=Bearer ([^\x01]+)/.exec(decoded)?.[1] ?? '';
          if (valid(token)) sock.write('235 2.7.0 Accepted\r\n');
          else { challenged = true; sock.write(`334 ${Buffer.from('{"status":"invalid_token"}').toString('base64')}\r\n`); }
        } else if (/^QUIT/i.test(line)) sock.end('221 Bye\r\n');
        else sock.write('502 5.5.1 unexpected\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

async function connected(port: number): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, name: 'relay.test' });
  await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
  cleanups.push(() => conn.close());
  return conn;
}

async function source(): Promise<{ oauth: OAuthServer; tokens: TokenSource }> {
  const oauth = await startOAuthServer({ expiresIn: 3600 });
  cleanups.push(() => oauth.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-bearer-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'rt');
  fs.writeFileSync(file, oauth.issueRefreshToken());
  return { oauth, tokens: new TokenSource({ route: 'relay', grant: 'refresh_token', tokenUrl: oauth.tokenUrl, clientId: 'test-client', refreshTokenFile: file }, 'alice@example.com') };
}

describe('oauthLogin with OAUTHBEARER (RFC 7628)', () => {
  it('sends the gs2 header, host and port; a refused token is refreshed once and the retry succeeds', async () => {
    const { oauth, tokens } = await source();
    const stale = await tokens.token();
    const peer = await bearerPeer((t) => t !== stale && oauth.isValid('', t));
    const r = await oauthLogin(await connected(peer.port), tokens, tokens.user, 'OAUTHBEARER', { host: 'smtp.example.com', port: peer.port });
    assert.deepEqual(r, { ok: true, refreshed: true });
    assert.equal(peer.seen.length, 2);
    assert.ok(peer.seen[0]!.startsWith(`n,a=alice@example.com,\x01host=smtp.example.com\x01port=${peer.port}\x01auth=Bearer ${stale}\x01\x01`));
    assert.equal(oauth.refreshes.length, 2);
  });

  it('a second refusal is the answer: no further refresh, the reply is returned', async () => {
    const { oauth, tokens } = await source();
    const peer = await bearerPeer(() => false);
    const r = await oauthLogin(await connected(peer.port), tokens, tokens.user, 'OAUTHBEARER', { host: 'smtp.example.com', port: peer.port });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && !r.token && r.refreshed && /^535 5\.7\.8 Username and Password not accepted/.test(r.response ?? ''), JSON.stringify(r));
    assert.equal(peer.seen.length, 2);
    assert.equal(oauth.refreshes.length, 2);
  });

  it('a refresh failure comes back as the token error, with nothing sent to the server', async () => {
    const { oauth, tokens } = await source();
    oauth.revokeRefreshTokens();
    const peer = await bearerPeer(() => true);
    const r = await oauthLogin(await connected(peer.port), tokens, tokens.user, 'OAUTHBEARER', { host: 'smtp.example.com', port: peer.port });
    assert.ok(!r.ok && r.token && /invalid_grant/.test(r.token.message), JSON.stringify(r));
    assert.equal(peer.seen.length, 0);
  });
});
