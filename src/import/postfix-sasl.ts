// Inbound SASL users: Cyrus (sasldb2) or Dovecot hold them in their own
// stores, with passwords smarthost cannot read back. The import says where
// they are and how to re-add them; the mechanism list is carried over as far
// as smarthost has it (PLAIN and LOGIN).
import type { Ctx } from './context.js';
import type { MainCf } from './postfix-main-cf.js';

const SMTPD_CONF = ['sasl/smtpd.conf', '/etc/sasl2/smtpd.conf', '/usr/lib/sasl2/smtpd.conf'];

/** "key: value" lines of a Cyrus SASL application config. */
function parseSaslConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

export function cyrusUsers(main: MainCf, ctx: Ctx): void {
  // raw, not get: smtpd_sasl_type itself is still reported as not carried over
  const type = (main.raw('smtpd_sasl_type') ?? 'cyrus').toLowerCase();
  const readd = 'their passwords cannot be exported (only the SASL library can check them); re-add each user with `smarthost user add NAME` (it prompts for the password)';
  if (type !== 'cyrus') {
    ctx.report.skip(`inbound SASL users (smtpd_sasl_type = ${type})`, `they live in ${type}'s own store: ${readd}`);
    return;
  }
  const conf = SMTPD_CONF.map((p) => ctx.files.read(p)).find((f) => f !== undefined);
  const o = conf ? parseSaslConf(conf.text) : new Map<string, string>();
  const db = o.get('sasldb_path') ?? '/etc/sasldb2';
  const where = o.get('pwcheck_method') === 'saslauthd' ? 'saslauthd (system accounts or PAM)' : `the Cyrus database ${db}`;
  ctx.report.skip(`inbound SASL users in ${where}`, `${readd}; on the old host \`sasldblistusers2 -f ${db}\` lists their names`);
  const mechs = o.get('mech_list');
  if (mechs) ctx.report.carry(`${conf!.original} mech_list: ${mechs}`, 'AUTH PLAIN and LOGIN (what smarthost offers, after TLS)');
}
