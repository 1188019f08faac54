// The probe's diagnoses as a table: each fact must name the cause in plain words and give a
// fix that points at the right setting or URL.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { advise, type Fact } from './diagnose.js';

const CASES: Array<{ name: string; fact: Fact; diagnosis: RegExp; fix: RegExp }> = [
  { name: 'connect timeout on port 25', fact: { kind: 'connect', host: 'smtp.example.com', ip: '192.0.2.1', port: 25, code: 'ETIMEDOUT', timeoutMs: 10_000 },
    diagnosis: /many ISPs and cloud providers block outgoing port 25/, fix: /smtp:\/\/smtp\.example\.com:587 or smtps:\/\/smtp\.example\.com:465/ },
  { name: 'connect timeout on another port', fact: { kind: 'connect', host: 'smtp.example.com', ip: '192.0.2.1', port: 587, code: 'ETIMEDOUT', timeoutMs: 10_000 },
    diagnosis: /no answer from smtp\.example\.com\[192\.0\.2\.1\]:587 within 10s; a firewall/, fix: /outgoing connections to port 587/ },
  { name: 'connection refused', fact: { kind: 'connect', host: 'h', ip: '127.0.0.1', port: 2525, code: 'ECONNREFUSED', timeoutMs: 1000 },
    diagnosis: /refused the connection: nothing listens on port 2525/, fix: /587 is submission with STARTTLS, 465 is TLS/ },
  { name: 'name not found', fact: { kind: 'dns', host: 'smtp.exmaple.com', code: 'ENOTFOUND' },
    diagnosis: /the name smtp\.exmaple\.com does not exist/, fix: /spelling/ },
  { name: 'name service failure', fact: { kind: 'dns', host: 'smtp.example.com', code: 'EAI_AGAIN' },
    diagnosis: /name service failed \(EAI_AGAIN\)/, fix: /resolv\.conf/ },
  { name: 'TLS spoken to a plain port', fact: { kind: 'tls-on-plain-port', label: 'h[127.0.0.1]', host: 'h', port: 587, message: 'wrong version number', reply: '220 h ESMTP' },
    diagnosis: /this port speaks plain SMTP \(it greeted in plaintext with "220 h ESMTP"\)/, fix: /^use smtp:\/\/h:587/ },
  { name: 'plaintext spoken to an implicit-TLS port', fact: { kind: 'no-greeting', host: 'h', port: 465, timeoutMs: 2000, expectsTls: true },
    diagnosis: /this port expects TLS from the first byte/, fix: /^use smtps:\/\/h:465$/ },
  { name: 'no greeting, no TLS either', fact: { kind: 'no-greeting', host: 'h', port: 2525, timeoutMs: 2000, expectsTls: false },
    diagnosis: /sent no greeting within 2s/, fix: /--timeout/ },
  { name: 'greeting refused', fact: { kind: 'greeting-refused', reply: '554 5.7.1 blocked' },
    diagnosis: /refused the session at its greeting: 554 5\.7\.1 blocked/, fix: /blocked or rate-limited/ },
  { name: 'STARTTLS missing, mandatory level', fact: { kind: 'starttls-missing', host: 'h', tls: 'verify' },
    diagnosis: /does not offer STARTTLS, so with tls = "verify" mail to this upstream is deferred/, fix: /smtps:\/\/h:465/ },
  { name: 'STARTTLS missing, may with credentials', fact: { kind: 'starttls-missing', host: 'h', tls: 'may', username: 'alice' },
    diagnosis: /tls = "may" mail would go in plaintext, and the credentials for "alice" would not be sent/, fix: /allow_plaintext_auth/ },
  { name: 'certificate expired', fact: { kind: 'certificate', label: 'h[127.0.0.1]', message: 'certificate has expired' },
    diagnosis: /the certificate of h\[127\.0\.0\.1\] has expired/, fix: /renew it/ },
  { name: 'certificate self-signed', fact: { kind: 'certificate', label: 'h[127.0.0.1]', message: 'self-signed certificate' },
    diagnosis: /is self-signed/, fix: /ca_file/ },
  { name: 'certificate for other names', fact: { kind: 'certificate', label: 'h[127.0.0.1]', message: "Hostname/IP h does not match the certificate's names: DNS:wrong.example" },
    diagnosis: /is for other names \(DNS:wrong\.example\)/, fix: /use a url with one of those names/ },
  { name: 'AUTH not offered before TLS', fact: { kind: 'auth-not-offered', beforeTls: true, username: 'alice' },
    diagnosis: /offers STARTTLS but no AUTH before TLS/, fix: /tls = "verify"/ },
  { name: 'credentials never sent in clear text', fact: { kind: 'auth-plaintext', tls: 'none', username: 'alice' },
    diagnosis: /never sends the credentials for "alice" in clear text/, fix: /allow_plaintext_auth = true only for a tunnel/ },
  { name: 'mechanisms do not meet', fact: { kind: 'auth-mechanisms', offered: ['CRAM-MD5'], configured: ['PLAIN'] },
    diagnosis: /offers AUTH CRAM-MD5, but mechanisms = \["PLAIN"\]/, fix: /mechanisms = \["CRAM-MD5"\]/ },
  { name: 'credentials rejected', fact: { kind: 'auth-rejected', reply: '535 5.7.8 Authentication failed', username: 'alice', source: 'password_file /etc/x', mechanism: 'PLAIN' },
    diagnosis: /rejected username "alice" with the password from password_file \/etc\/x \(AUTH PLAIN\): 535/, fix: /app password/ },
  { name: 'password file with a Postfix sasl_passwd line',
    fact: { kind: 'password-file-shape', file: '/etc/x', shape: { kind: 'sasl_passwd', shape: '[smtp.example.com]:587 alice:PASSWORD', line: 1, otherUser: false, certain: true } },
    diagnosis: /^password_file \/etc\/x line 1 looks like a line from Postfix's sasl_passwd \(\[smtp\.example\.com\]:587 alice:PASSWORD\)/, fix: /^write the password alone in \/etc\/x/ },
  { name: 'credentials rejected, password file holds another address:password',
    fact: { kind: 'auth-rejected', reply: '535 5.7.8 Authentication failed', username: 'alice', source: 'password_file /etc/x', mechanism: 'PLAIN',
      postfix: { file: '/etc/x', shape: { kind: 'user-password', shape: 'bob@example.com:PASSWORD', line: 1, otherUser: true, certain: false } } },
    diagnosis: /535 .*; password_file \/etc\/x line 1 looks like a "user:password" pair \(bob@example\.com:PASSWORD\)/, fix: /^write the password alone/ },
  { name: 'OAuth2 refresh token revoked', fact: { kind: 'oauth-token', message: 'OAuth2 token refresh for a@example.com at https://oauth2.googleapis.com/token failed: invalid_grant (Token has been expired or revoked.); run "smarthost oauth login relay" to sign in again' },
    diagnosis: /^no OAuth2 access token: .*failed: invalid_grant \(Token has been expired or revoked\.\)$/, fix: /^run "smarthost oauth login relay" to sign in again$/ },
  { name: 'OAuth2 token refused by the server', fact: { kind: 'oauth-rejected', reply: '535 5.7.3 Authentication unsuccessful', mechanism: 'XOAUTH2', fresh: true, login: { login: 'delegated', mailbox: 'a@example.com', route: 'corp' }, scope: 'https://outlook.office.com/SMTP.Send' },
    diagnosis: /refused a freshly refreshed access token .* for mailbox "a@example\.com" \(AUTH XOAUTH2\): 535 5\.7\.3/, fix: /SMTP AUTH is enabled for the mailbox a@example\.com.*scope includes https:\/\/outlook\.office\.com\/SMTP\.Send.*oauth login corp/ },
  { name: 'OAuth2 token refused by a non-Microsoft server', fact: { kind: 'oauth-rejected', reply: '535 5.7.8 Username and Password not accepted', mechanism: 'XOAUTH2', fresh: true, login: { login: 'delegated', mailbox: 'a@example.com', route: 'corp' }, scope: 'https://mail.google.com/' },
    diagnosis: /refused a freshly refreshed access token .* for mailbox "a@example\.com" \(AUTH XOAUTH2\): 535 5\.7\.8/, fix: /SMTP AUTH is enabled for the mailbox a@example\.com.*scope = "https:\/\/mail\.google\.com\/".*oauth login corp/ },
  { name: 'OAuth2 configured, server offers no OAuth2 mechanism', fact: { kind: 'auth-mechanisms', offered: ['PLAIN', 'LOGIN'], configured: ['XOAUTH2'] },
    diagnosis: /auth = "oauth2" with mechanisms = \["XOAUTH2"\] needs one of them/, fix: /takes no OAuth2 login/ },
  { name: 'authentication required at MAIL (530)', fact: { kind: 'mail', authOffered: true, reply: '530 5.7.0 Authentication required', sender: 'a@b', original: 'a@b', section: '[relay]', authenticated: false },
    diagnosis: /wants a login before MAIL FROM/, fix: /add username and password_file \(or password_env\) to \[relay\]/ },
  { name: 'authentication required at MAIL (550 5.7.1)', fact: { kind: 'mail', authOffered: true, reply: '550 5.7.1 Authentication Required', sender: 'a@b', original: 'a@b', section: '[relay]', authenticated: false },
    diagnosis: /wants a login/, fix: /add username/ },
  { name: 'sender rejected (5.1.8)', fact: { kind: 'mail', authOffered: true, reply: '550 5.1.8 <postmaster@box.lan>: Sender address rejected: Domain not found', sender: 'postmaster@box.lan', original: 'postmaster@box.lan', section: '[relay]', authenticated: true },
    diagnosis: /rejected the sender <postmaster@box\.lan> as a return address/, fix: /\[rewrite\] senders = \{ "@box\.lan" = "you@yourdomain" \}/ },
  { name: 'sender rejected (553)', fact: { kind: 'mail', authOffered: true, reply: '553 5.7.1 Sender not owned by user', sender: 'x@y.example', original: 'root@box', section: '[relay]', authenticated: true },
    diagnosis: /<x@y\.example> \(rewritten from root@box by \[rewrite\] senders\)/, fix: /"@box" = "you@yourdomain"/ },
  { name: 'MAIL deferred', fact: { kind: 'mail', authOffered: true, reply: '451 4.3.0 try later', sender: 'a@b', original: 'a@b', section: '[relay]', authenticated: false },
    diagnosis: /deferred MAIL FROM/, fix: /temporary/ },
  { name: 'relay denied at RCPT', fact: { kind: 'rcpt', reply: '554 5.7.1 <bob@example.net>: Relay access denied', rcpt: 'bob@example.net', section: '[relay]', authenticated: false },
    diagnosis: /will not relay mail to <bob@example\.net>/, fix: /add username and password_file/ },
  { name: 'unknown recipient', fact: { kind: 'rcpt', reply: '550 5.1.1 <bob@example.net>: User unknown', rcpt: 'bob@example.net', section: '[relay]', authenticated: true },
    diagnosis: /does not exist/, fix: /--send-test/ },
];

describe('probe diagnoses', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const a = advise(c.fact);
      assert.match(a.diagnosis, c.diagnosis);
      assert.match(a.fix, c.fix);
    });
  }
});
