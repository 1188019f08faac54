import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMasterCf, servicePort } from './postfix-master-cf.js';

describe('master.cf', () => {
  it('reads services with -o overrides on continuation lines, skipping commented ones', () => {
    const { services, problems } = parseMasterCf([
      'smtp      inet  n       -       y       -       -       smtpd',
      '#submission inet n       -       y       -       -       smtpd',
      '#  -o smtpd_tls_security_level=encrypt',
      '443       inet  n       -       n       -       -       smtpd',
      '  -o smtpd_sasl_auth_enable=yes',
      '  -o smtpd_tls_security_level=encrypt',
      '  # a comment between options',
      '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      'smtps     inet  n       -       y       -       -       smtpd -o smtpd_tls_wrappermode=yes -v',
      'relay     unix  -       -       y       -       -       smtp',
      '        -o syslog_name=postfix/$service_name',
    ].join('\n'));
    assert.deepEqual(problems, []);
    assert.deepEqual(services.map((s) => [s.service, s.type, s.command, s.line]), [
      ['smtp', 'inet', 'smtpd', 1], ['443', 'inet', 'smtpd', 4], ['smtps', 'inet', 'smtpd', 9], ['relay', 'unix', 'smtp', 10],
    ]);
    assert.deepEqual([...services[1]!.overrides], [
      ['smtpd_sasl_auth_enable', 'yes'], ['smtpd_tls_security_level', 'encrypt'], ['smtpd_client_restrictions', 'permit_sasl_authenticated,reject'],
    ]);
    assert.deepEqual([...services[2]!.overrides], [['smtpd_tls_wrappermode', 'yes']]);
    assert.deepEqual(services[2]!.args, ['-v']);
    assert.equal(services[3]!.overrides.get('syslog_name'), 'postfix/$service_name');
  });

  it('reads the Postfix 3.0 brace form and -oname=value', () => {
    const { services } = parseMasterCf('submission inet n - y - - smtpd -o { smtpd_tls_security_level = encrypt } -osmtpd_sasl_auth_enable=yes\n');
    assert.deepEqual([...services[0]!.overrides], [['smtpd_tls_security_level', 'encrypt'], ['smtpd_sasl_auth_enable', 'yes']]);
  });

  it('reports a line with too few fields', () => {
    assert.match(parseMasterCf('smtp inet n - smtpd\n').problems[0]!, /fewer than 8 fields/);
  });

  it('turns service names into ports', () => {
    assert.deepEqual(servicePort('smtp'), { port: 25 });
    assert.deepEqual(servicePort('submission'), { port: 587 });
    assert.deepEqual(servicePort('smtps'), { port: 465 });
    assert.deepEqual(servicePort('443'), { port: 443 });
    assert.deepEqual(servicePort('127.0.0.1:submission'), { host: '127.0.0.1', port: 587 });
    assert.deepEqual(servicePort('[::1]:2525'), { host: '::1', port: 2525 });
    assert.equal(servicePort('qmqp'), undefined);
    assert.equal(servicePort('99999'), undefined);
  });
});
