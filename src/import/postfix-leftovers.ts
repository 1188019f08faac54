// Every main.cf parameter the mapping did not read is reported as not carried
// over, with the reason when we know it: a user should see each line of the old
// file accounted for, not guess which ones were silently dropped.
import type { Ctx } from './context.js';
import type { MainCf } from './postfix-main-cf.js';

const INSTALL_PATHS = ['queue_directory', 'command_directory', 'daemon_directory', 'data_directory', 'mail_owner', 'setgid_group',
  'sendmail_path', 'newaliases_path', 'mailq_path', 'html_directory', 'manpage_directory', 'sample_directory', 'readme_directory',
  'meta_directory', 'shlib_directory', 'mail_spool_directory'];

const REASONS: Array<[RegExp, string]> = [
  [/^debug_peer_|^debugger_command$/, 'Postfix debugging aids; smarthost has no verbose mode per peer'],
  [/_loglevel$|^smtp_tls_note_starttls_offer$/, 'smarthost\'s log lines are fixed (each delivery line names TLS failures)'],
  [/^tls_random_|^tls_daemon_random/, 'Node\'s TLS seeds itself from the kernel'],
  [/^broken_sasl_auth_clients$/, 'the old Outlook "AUTH=" EHLO form is not sent: clients that need it (Outlook Express 4, Outlook 2000) cannot log in'],
  [/^smtpd_sasl_(type|path)$/, 'smarthost checks passwords itself (users file of `smarthost user add`), not through Cyrus or Dovecot'],
  [/^smtpd_sasl_local_domain$/, 'realms: smarthost user names are used as typed'],
  [/^smtpd_sasl_security_options$/, 'smarthost offers AUTH PLAIN and LOGIN only over TLS unless allow_plaintext_auth, never anonymous'],
  [/^smtpd_tls_(mandatory_|)(protocols|ciphers)$|^smtpd_tls_exclude_ciphers$/, 'smarthost accepts TLS 1.2 and later only ([tls] min_version)'],
  [/milter/, 'smarthost runs no milters: content filters (spam, DKIM signing) must be set up elsewhere'],
  [/^unknown_local_recipient_reject_code$/, 'smarthost rejects unknown local users with 550 5.1.1 (accounts in /etc/passwd, or [local] users)'],
  [/^smtpd_banner$/, 'the greeting is "HOSTNAME ESMTP smarthost"'],
  [/^(home_mailbox|mailbox_command|mailbox_transport)$/, 'smarthost delivers local mail to Maildir ([local] maildir)'],
  [/^(smtpd_|smtp_)/, 'no smarthost counterpart'],
];

export function skipLeftovers(main: MainCf, ctx: Ctx): void {
  const left = [...main.params.keys()].filter((n) => !main.used.has(n));
  const paths = left.filter((n) => INSTALL_PATHS.includes(n));
  if (paths.length) ctx.report.skip(`install paths (${paths.join(', ')})`, 'smarthost keeps its files in data_dir');
  for (const name of left.filter((n) => !INSTALL_PATHS.includes(n))) {
    const why = REASONS.find(([re]) => re.test(name))?.[1] ?? 'no smarthost counterpart';
    ctx.report.skip(main.shown(name), why);
  }
}
