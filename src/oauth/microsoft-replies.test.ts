import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { explainMicrosoftReply, explainTokenError, tokenClaims, type ReplyContext } from './microsoft-replies.js';

const APP: ReplyContext = { login: 'app', mailbox: 'relay@contoso.com', route: 'm365', clientId: 'app-1', loginAs: 'username' };
const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

const CASES: Array<{ reply: string; ctx?: Partial<ReplyContext>; meaning: RegExp; fix: RegExp }> = [
  { reply: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.',
    meaning: /turned off for the whole Microsoft 365 tenant/, fix: /Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/ },
  { reply: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.',
    meaning: /turned off for the mailbox relay@contoso\.com/, fix: /^Set-CASMailbox -Identity relay@contoso\.com -SmtpClientAuthenticationDisabled \$false/ },
  { reply: '535 5.7.139 Authentication unsuccessful, user is locked by your organization\'s security defaults policy. Contact your administrator.', ctx: { login: 'password' },
    meaning: /security defaults block SMTP AUTH with a password/, fix: /grant = "client_credentials"/ },
  { reply: '535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.',
    meaning: /turned off for the mailbox or the tenant, or a sign-in policy/, fix: /Set-CASMailbox .*Set-TransportConfig/ },
  { reply: '550 5.7.30 Basic authentication is not supported for Client Submission.', ctx: { login: 'password' },
    meaning: /no longer takes a password/, fix: /auth = "oauth2", provider = "microsoft", grant = "client_credentials" .*SMTP\.SendAsApp/ },
  { reply: '554 5.2.252 SendAsDenied; relay@contoso.com not allowed to send as alerts@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied',
    ctx: { sender: 'alerts@contoso.com' }, meaning: /relay@contoso\.com may not send as <alerts@contoso\.com>/, fix: /login_as = "sender".*Add-RecipientPermission -Identity alerts@contoso\.com -Trustee relay@contoso\.com -AccessRights SendAs/ },
  { reply: '535 5.7.3 Authentication unsuccessful [MW4PR03CA0055.namprd03.prod.outlook.com]',
    meaning: /does not know the app's service principal, or the app may not use this mailbox/, fix: /New-ServicePrincipal -AppId app-1 -ObjectId .*Add-MailboxPermission -Identity relay@contoso\.com -User OBJECT_ID -AccessRights FullAccess/ },
  { reply: '535 5.7.3 Authentication unsuccessful', ctx: { claims: { aud: 'https://graph.microsoft.com', roles: ['Mail.Send'] } },
    meaning: /a token for https:\/\/graph\.microsoft\.com, not for Exchange Online: the scope is wrong/, fix: /scope = "https:\/\/outlook\.office365\.com\/\.default"/ },
  { reply: '535 5.7.3 Authentication unsuccessful', ctx: { claims: { aud: 'https://outlook.office365.com', roles: [] } },
    meaning: /no SMTP\.SendAsApp permission \(roles: none\)/, fix: /Application permissions > SMTP\.SendAsApp, then "Grant admin consent"/ },
  { reply: '530 5.7.57 Client not authenticated to send mail. [DM6PR11CA0012.namprd11.prod.outlook.com]', ctx: { login: 'password' },
    meaning: /takes mail on this port only after a login/, fix: /auth = "oauth2"/ },
];

describe('explainMicrosoftReply', () => {
  for (const c of CASES) {
    it(c.reply.slice(0, 60), () => {
      const e = explainMicrosoftReply(c.reply, { ...APP, ...c.ctx });
      assert.ok(e, 'recognised');
      assert.match(e.meaning, c.meaning);
      assert.match(e.fix, c.fix);
    });
  }
  it('leaves other servers\' replies alone', () => {
    assert.equal(explainMicrosoftReply('535 5.7.8 Username and Password not accepted', APP), undefined);
    assert.equal(explainMicrosoftReply('550 5.1.1 User unknown', APP), undefined);
    assert.equal(explainMicrosoftReply('535 5.7.3 Security conversion required', APP), undefined, 'only Microsoft\'s wording of 5.7.3');
  });
});

describe('tokenClaims and explainTokenError', () => {
  it('reads aud and roles of a JWT access token, nothing of an opaque one', () => {
    assert.deepEqual(tokenClaims(jwt({ aud: 'https://outlook.office365.com', roles: ['SMTP.SendAsApp'], appid: 'x' })), { aud: 'https://outlook.office365.com', roles: ['SMTP.SendAsApp'] });
    assert.equal(tokenClaims('ya29.opaque-token'), undefined);
  });
  it('names the AADSTS code from error_codes or the description, else the RFC 6749 error', () => {
    assert.match(explainTokenError({ error: 'invalid_client', error_codes: [7000222] })!.meaning, /expired/);
    assert.match(explainTokenError({ error: 'invalid_request', error_description: 'AADSTS700024: Client assertion is not within its valid time range.' })!.fix, /clock/);
    assert.match(explainTokenError({ error: 'invalid_scope' })!.fix, /\/\.default/);
    assert.equal(explainTokenError({ error: 'temporarily_unavailable' }), undefined);
  });
});
