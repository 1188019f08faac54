// Known providers as data: `preset = "microsoft365"` on [relay] or a [[route]] fills in the
// keys below, written exactly as a user would write them in smarthost.toml, and the user's own
// keys win. The merged table is then validated like any other, so a preset can never hold a
// value the validator would refuse (each preset is tested to pass `smarthost check`).
// Hosts, ports and limits are what each provider publishes; `source` names where.

/** A provider reply that means something else than its code says. Both fields must match. */
export interface ReplyRule {
  /** Enhanced status code, or its prefix ending in "." ("4.7." = every 4.7.x). */
  readonly enhanced: string;
  /** Case-insensitive regular expression the reply text must contain; absent = any text. */
  readonly text?: string;
}

export interface Preset {
  readonly title: string;
  /** smarthost.toml keys of an upstream; "{region}" in url is replaced by the `region` key. */
  readonly keys: Readonly<Record<string, string | number | readonly string[]>>;
  /** With auth = "oauth2": the OAuth provider, so the user need not name it. */
  readonly oauthProvider?: 'google' | 'microsoft';
  /** The SPF mechanism the sender domain's record should include when mail leaves through this provider. */
  readonly spfInclude?: string;
  /** When the include matters only in some set-ups, which. */
  readonly spfNote?: string;
  /** `region` key: required when the url names it. */
  readonly region?: { readonly example: string; readonly pattern: string };
  /** Replies that mean "slow down", at any stage of the dialogue (not only before MAIL FROM). */
  readonly throttle: readonly ReplyRule[];
  /** 5xx replies the provider documents as a quota or limit that passes: deferred, never bounced. */
  readonly temporary: readonly ReplyRule[];
  /** Where host, port and limits were checked. */
  readonly source: string;
  /** What the user still has to give, for the README table and `check`. */
  readonly note?: string;
}

const MICROSOFT_THROTTLE: readonly ReplyRule[] = [{ enhanced: '4.7.' }, { enhanced: '4.3.2', text: 'concurrent connections? limit|thread limit' }];
/** "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException": the 10,000 recipients a day are used up (learn.microsoft.com smtp-submission-improvements). */
const MICROSOFT_QUOTA: readonly ReplyRule[] = [{ enhanced: '5.2.0', text: 'SubmissionQuotaExceeded' }];
const GOOGLE_THROTTLE: readonly ReplyRule[] = [{ enhanced: '4.7.' }];
/**
 * Google documents these daily limits as lasting until the rolling 24 hours pass
 * (support.google.com/a/answer/2956491 and answer/166852): "550 5.4.5 Daily user sending limit
 * exceeded", "550 5.4.5 Daily SMTP relay limit exceeded for user", "550 5.7.1 Daily SMTP relay
 * limit exceeded for customer".
 */
const GOOGLE_QUOTA: readonly ReplyRule[] = [
  { enhanced: '5.4.5', text: 'daily (user )?(sending|smtp relay) (quota|limit) exceeded' },
  { enhanced: '5.7.1', text: 'daily smtp relay limit exceeded' },
];

export const PRESETS: Readonly<Record<string, Preset>> = Object.freeze({
  microsoft365: {
    title: 'Microsoft 365 / Exchange Online, SMTP AUTH client submission',
    keys: { url: 'smtp://smtp.office365.com:587', tls: 'verify', mechanisms: ['LOGIN'], rate: '30/1m', concurrency: 3, quota: '10000/1d' },
    oauthProvider: 'microsoft',
    spfInclude: 'spf.protection.outlook.com',
    throttle: MICROSOFT_THROTTLE,
    temporary: MICROSOFT_QUOTA,
    source: 'https://learn.microsoft.com/en-us/exchange/troubleshoot/send-emails/smtp-submission-improvements (3 connections, 30 messages a minute, 10,000 recipients a day); https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365 (smtp.office365.com:587, STARTTLS)',
    note: 'username = the mailbox; password_file, or auth = "oauth2"',
  },
  'microsoft365-hve': {
    title: 'Microsoft 365 High Volume Email (HVE)',
    keys: { url: 'smtp://smtp-hve.office365.com:587', tls: 'verify', mechanisms: ['LOGIN'], quota: '100000/1d' },
    oauthProvider: 'microsoft',
    spfInclude: 'spf.protection.outlook.com',
    throttle: MICROSOFT_THROTTLE,
    temporary: MICROSOFT_QUOTA,
    source: 'https://ourcloudnetwork.com/enable-high-volume-email-for-microsoft-365/ (port 587 with TLS only; 100,000 recipients a day); https://practical365.com/exchange-online-hve (HVE is its own SMTP endpoint). The host name smtp-hve.office365.com is Microsoft\'s HVE endpoint as documented on learn.microsoft.com (not in the stored excerpts: check it). No message rate or connection limit is published, so none is set',
    note: 'username = the HVE account; mostly internal recipients',
  },
  gmail: {
    title: 'Gmail / Google Workspace, a user mailbox (smtp.gmail.com)',
    keys: { url: 'smtp://smtp.gmail.com:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'], quota: '2000/1d' },
    oauthProvider: 'google',
    spfInclude: '_spf.google.com',
    throttle: GOOGLE_THROTTLE,
    temporary: GOOGLE_QUOTA,
    source: 'https://support.google.com/a/answer/166852 (Workspace: 2,000 messages and 10,000 recipients a day, rolling 24 hours; consumer Gmail 500). The quota counts recipients, so 2000 also keeps under the message limit. https://support.google.com/a/answer/176600 (smtp.gmail.com:587 STARTTLS). No connection limit is published, so none is set',
    note: 'username = the address; an app password in password_file, or auth = "oauth2"; consumer Gmail: quota = "500/1d"',
  },
  'google-relay': {
    title: 'Google Workspace SMTP relay service (smtp-relay.gmail.com)',
    keys: { url: 'smtp://smtp-relay.gmail.com:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'], quota: '10000/1d' },
    spfInclude: '_spf.google.com',
    throttle: GOOGLE_THROTTLE,
    temporary: GOOGLE_QUOTA,
    source: 'https://support.google.com/a/answer/2956491 (smtp-relay.gmail.com:587 with TLS; 10,000 recipients per user in 24 hours; 450 4.2.1 / 550 5.7.1 / 550 5.4.5 limit replies)',
    note: 'by IP address (no username) or username + app password',
  },
  'amazon-ses': {
    title: 'Amazon SES SMTP interface',
    keys: { url: 'smtp://email-smtp.{region}.amazonaws.com:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'], rate: '1/1s', quota: '200/1d' },
    region: { example: 'eu-west-1', pattern: '^[a-z]{2}(-[a-z]+)+-\\d$' },
    spfInclude: 'amazonses.com',
    spfNote: 'needed where SES sends with a custom MAIL FROM domain; by default SES uses its own',
    throttle: [],
    temporary: [],
    source: 'https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html (email-smtp.REGION.amazonaws.com, STARTTLS on 587); https://docs.aws.amazon.com/ses/latest/dg/quotas.html (sandbox: 200 recipients per 24 hours, 1 per second; quotas count recipients, per region)',
    note: 'region = "eu-west-1" (SMTP credentials are per region); out of the sandbox set rate and quota to your account\'s (aws sesv2 get-account)',
  },
  mailgun: {
    title: 'Mailgun, US region',
    keys: { url: 'smtp://smtp.mailgun.org:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'] },
    spfInclude: 'mailgun.org',
    throttle: [],
    temporary: [],
    source: 'https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp (ports 25, 587, 2525 STARTTLS, 465 TLS; smtp.eu.mailgun.org for EU domains); quotas depend on the plan, so none is set',
    note: 'username = postmaster@your sending domain',
  },
  'mailgun-eu': {
    title: 'Mailgun, EU region',
    keys: { url: 'smtp://smtp.eu.mailgun.org:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'] },
    spfInclude: 'mailgun.org',
    throttle: [],
    temporary: [],
    source: 'https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp (smtp.eu.mailgun.org for domains in the EU region)',
    note: 'username = postmaster@your sending domain',
  },
  sendgrid: {
    title: 'Twilio SendGrid SMTP relay',
    keys: { url: 'smtp://smtp.sendgrid.net:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'], username: 'apikey' },
    spfInclude: 'sendgrid.net',
    throttle: [],
    temporary: [],
    source: 'https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api (smtp.sendgrid.net:587, username "apikey", the API key as password); quotas depend on the plan, so none is set',
    note: 'password_file = the API key',
  },
  postmark: {
    title: 'Postmark SMTP (transactional stream)',
    keys: { url: 'smtp://smtp.postmarkapp.com:587', tls: 'verify', mechanisms: ['PLAIN', 'LOGIN'] },
    spfInclude: 'spf.mtasv.net',
    spfNote: 'needed for a custom Return-Path domain; by default Postmark uses its own',
    throttle: [],
    temporary: [],
    source: 'https://postmarkapp.com/support/article/811-what-are-the-smtp-details-api-tokens-i-should-be-using (smtp.postmarkapp.com, ports 25, 2525, 587, STARTTLS; the Server API Token as username and password); no numeric limit is published',
    note: 'username = the Server API Token, password_file = the same token',
  },
} satisfies Record<string, Preset>);

export const PRESET_NAMES = Object.freeze(Object.keys(PRESETS));

/** Does `reply` ("451 4.7.0 Try again later") match one of `rules`? */
export function replyMatches(reply: string, rules: readonly ReplyRule[]): boolean {
  const m = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/s.exec(reply.trim());
  if (!m || !m[2]) return false;
  const [, , enhanced, text] = m as unknown as [string, string, string, string];
  return rules.some((r) => (r.enhanced.endsWith('.') ? enhanced.startsWith(r.enhanced) : enhanced === r.enhanced)
    && (r.text === undefined || new RegExp(r.text, 'i').test(text)));
}
