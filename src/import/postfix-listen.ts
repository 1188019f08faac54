// Postfix's inbound side in smarthost terms: each master.cf "inet ... smtpd"
// service on each inet_interfaces address becomes a [[listen]], its -o
// overrides deciding TLS and AUTH; mynetworks becomes trusted_networks; the
// smtpd certificate becomes [tls].
import type { ListenAuth, ListenTls } from '../config/types.js';
import { parseCidr } from '../config/cidr.js';
import { filePath, type Ctx } from './context.js';
import type { ImportedListen } from './model.js';
import type { MainCf } from './postfix-main-cf.js';
import { servicePort, type MasterService } from './postfix-master-cf.js';

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/** mynetworks (or mynetworks_style) -> trusted_networks; `loopbackOnly`: no other host can connect anyway. */
export function trustedNetworks(main: MainCf, ctx: Ctx, loopbackOnly: boolean): string[] {
  if (main.isSet('mynetworks') && main.get('mynetworks') !== '') {
    const nets: string[] = [];
    for (const item of main.list('mynetworks')) {
      const n = item.replace(/^\[([^\]]+)\]/, '$1'); // Postfix writes IPv6 as [::1]/128
      if (parseCidr(n)) nets.push(n);
      else ctx.report.skip(`mynetworks entry ${item}`, 'only IP networks are carried over (files and lookup tables are not read); add its networks to trusted_networks');
    }
    ctx.report.carry(main.shown('mynetworks'), `trusted_networks = [${nets.map((n) => `"${n}"`).join(', ')}]`);
    if (main.isSet('mynetworks_style')) ctx.report.skip(main.shown('mynetworks_style'), 'Postfix ignores it when mynetworks is given');
    main.used.add('mynetworks_style');
    return nets;
  }
  const style = main.get('mynetworks_style') ?? 'subnet';
  ctx.report.carry(main.shown('mynetworks_style'), `trusted_networks = ["127.0.0.0/8", "::1/128"] (this host)`);
  if (loopbackOnly) {
    ctx.report.note('every listener is on loopback: only this host can connect, so only this host is trusted (as with Postfix)');
  } else if (style === 'host') {
    ctx.report.note('mynetworks_style = host: Postfix also trusted the host\'s other own addresses; add them to trusted_networks if local programs connect from them');
  } else {
    const seen = ctx.host.networks.length ? ` (on the machine that ran the import: ${ctx.host.networks.join(', ')})` : '';
    ctx.report.note(`mynetworks_style = ${style}: Postfix trusted every client in the IP ${style === 'class' ? 'class A/B/C networks' : 'subnets'} of the host's interfaces${seen}; only loopback is trusted now: add the networks your clients relay from to trusted_networks`);
  }
  return LOOPBACK;
}

/** inet_interfaces x inet_protocols -> the hosts to bind; "all" on both families is "::" (dual-stack). */
export function listenHosts(main: MainCf, ctx: Ctx): string[] {
  const protocols = main.list('inet_protocols').map((p) => p.toLowerCase());
  const v4 = protocols.includes('all') || protocols.includes('ipv4');
  const v6 = protocols.includes('all') || protocols.includes('ipv6');
  const hosts: string[] = [];
  for (const i of main.list('inet_interfaces').map((x) => x.toLowerCase())) {
    if (i === 'all') hosts.push(v6 ? '::' : '0.0.0.0');
    else if (i === 'localhost' || i === 'loopback-only') hosts.push(...(v4 ? ['127.0.0.1'] : []), ...(v6 ? ['::1'] : []));
    else if (parseCidr(i.replace(/^\[|\]$/g, ''))) hosts.push(i.replace(/^\[|\]$/g, ''));
    else ctx.report.skip(`inet_interfaces entry ${i}`, 'only addresses, "localhost" and "all" are carried over; write the address it resolves to in [[listen]] address');
  }
  if (v6 && !v4 && hosts.includes('::')) ctx.report.note('inet_protocols = ipv6: "[::]" also accepts IPv4 clients on Linux (dual-stack)');
  return [...new Set(hosts.includes('::') || hosts.includes('0.0.0.0') ? hosts.filter((h) => h === '::' || h === '0.0.0.0') : hosts)];
}

const RESTRICTIONS = ['smtpd_client_restrictions', 'smtpd_helo_restrictions', 'smtpd_sender_restrictions', 'smtpd_relay_restrictions', 'smtpd_recipient_restrictions'];

function tlsOf(m: MainCf): ListenTls {
  if (m.bool('smtpd_tls_wrappermode')) return 'implicit';
  const level = m.get('smtpd_tls_security_level')?.toLowerCase();
  if (level) return level === 'encrypt' ? 'starttls-required' : level === 'may' ? 'starttls' : 'none';
  if (m.bool('smtpd_enforce_tls')) return 'starttls-required';
  return m.bool('smtpd_use_tls') ? 'starttls' : 'none';
}

/** AUTH required when a restriction list lets only logged-in clients through ("permit_sasl_authenticated, reject"). */
function authOf(m: MainCf): ListenAuth {
  if (!m.bool('smtpd_sasl_auth_enable')) return 'none';
  const only = RESTRICTIONS.some((r) => m.list(r).join(',').toLowerCase() === 'permit_sasl_authenticated,reject');
  return only ? 'required' : 'optional';
}

const CONSUMED = new Set(['smtpd_tls_wrappermode', 'smtpd_tls_security_level', 'smtpd_enforce_tls', 'smtpd_use_tls', 'smtpd_sasl_auth_enable', 'smtpd_tls_auth_only', ...RESTRICTIONS]);

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One master.cf smtpd service -> its [[listen]] sections. */
function serviceListeners(svc: MasterService, main: MainCf, hosts: string[], trusted: string[], ctx: Ctx): ImportedListen[] {
  const where = servicePort(svc.service);
  if (!where) { ctx.report.skip(`master.cf line ${svc.line} (${svc.service})`, 'the service name is no port smarthost knows; add a [[listen]] by hand'); return []; }
  const m = main.withOverrides(svc.overrides);
  const tls = tlsOf(m);
  const auth = authOf(m);
  const plaintext = auth !== 'none' && tls === 'none';
  const opts = [...svc.overrides].map(([k, v]) => `-o ${k}=${v}`).join(' ');
  const from = `master.cf line ${svc.line}: ${svc.service} ${svc.type} ${svc.command}${opts ? ` ${opts}` : ''}`;
  for (const [k, v] of svc.overrides) {
    if (!CONSUMED.has(k)) ctx.report.skip(`master.cf ${svc.service}: -o ${k}=${v}`, overrideWhy(k));
  }
  if (auth !== 'none' && tls === 'starttls' && !m.bool('smtpd_tls_auth_only')) {
    ctx.report.note(`${svc.service}: Postfix offered AUTH before STARTTLS (smtpd_tls_auth_only = no); smarthost offers it only after STARTTLS, so clients must use TLS to log in`);
  }
  if (plaintext) ctx.report.note(`${svc.service}: AUTH without TLS was offered (smtpd_tls_auth_only = no); carried over as allow_plaintext_auth = true: prefer tls = "starttls-required"`);
  const out = (where.host !== undefined ? [where.host] : hosts).map((h) => ({
    address: formatAddress(h, where.port), tls, auth, trustedNetworks: trusted, from, ...(plaintext ? { allowPlaintextAuth: true } : {}),
  }));
  for (const l of out) ctx.report.carry(`master.cf ${svc.service} ${svc.type} ${svc.command}`, `[[listen]] address = "${l.address}", tls = "${tls}", auth = "${auth}"${plaintext ? ', allow_plaintext_auth = true' : ''}`);
  return out;
}

function overrideWhy(name: string): string {
  if (name === 'syslog_name') return 'log lines are tagged smarthost/smtpd';
  if (name === 'milter_macro_daemon_name' || name.includes('milter')) return 'smarthost runs no milters';
  if (name.startsWith('smtpd_tls_mandatory') || name.startsWith('smtpd_tls_protocols') || name.endsWith('ciphers')) return 'smarthost accepts TLS 1.2 and later only ([tls] min_version)';
  return 'no smarthost counterpart';
}

export function listeners(services: readonly MasterService[], main: MainCf, ctx: Ctx): ImportedListen[] {
  const hosts = listenHosts(main, ctx);
  const trusted = trustedNetworks(main, ctx, hosts.length > 0 && hosts.every((h) => h === '::1' || h.startsWith('127.')));
  ctx.report.carry(`${main.shown('inet_interfaces')}, ${main.shown('inet_protocols')}`, `listen on ${hosts.map((h) => h.includes(':') ? `[${h}]` : h).join(', ')}`);
  const smtpd = services.filter((s) => s.type === 'inet' && (s.command === 'smtpd' || s.command === 'postscreen'));
  for (const s of smtpd.filter((x) => x.command === 'postscreen')) {
    ctx.report.skip(`master.cf ${s.service} inet postscreen`, 'carried over as a plain listener; smarthost has postscreen\'s pregreet test only ([[listen]] pregreet = "1s")');
  }
  return smtpd.flatMap((s) => serviceListeners(s, main, hosts, trusted, ctx));
}

/** smtpd_tls_cert_file/key_file -> [tls], when set. */
export function serverTls(main: MainCf, ctx: Ctx, anyTls: boolean): { certificate: string; key: string; from: string } | undefined {
  const cert = main.get('smtpd_tls_cert_file');
  const key = main.get('smtpd_tls_key_file') || cert;
  if (!cert || !key) {
    if (anyTls) ctx.report.note('a listener uses TLS but main.cf names no smtpd_tls_cert_file: smarthost generates a self-signed certificate; set [tls] certificate and key');
    return undefined;
  }
  const certificate = filePath(ctx, cert, 'smtpd_tls_cert_file');
  const keyFile = filePath(ctx, key, 'smtpd_tls_key_file');
  ctx.report.carry(`${main.shown('smtpd_tls_cert_file')}, ${main.shown('smtpd_tls_key_file')}`, `[tls] certificate = "${certificate}", key = "${keyFile}"`);
  const ca = main.get('smtpd_tls_CAfile');
  if (ca) ctx.report.skip(main.shown('smtpd_tls_CAfile'), `smarthost sends the chain in the certificate file: append the intermediate certificate(s) from ${ca} to ${certificate}`);
  return { certificate, key: keyFile, from: `main.cf ${main.shown('smtpd_tls_cert_file')}` };
}
