// The short message `smarthost probe --send-test` sends through the upstream.
import crypto from 'node:crypto';

/** A short test message; no line starts with a dot, so no dot-stuffing is needed (RFC 5321 §4.5.2). */
export function testMessage(from: string, to: string, host: string, url: string): string {
  return [
    `From: <${from}>`, `To: <${to}>`, 'Subject: smarthost probe test message',
    `Date: ${new Date().toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <probe.${Date.now()}.${crypto.randomBytes(4).toString('hex')}@${host}>`,
    'MIME-Version: 1.0', 'Content-Type: text/plain; charset=us-ascii', '',
    `This is a test message from \`smarthost probe\` on ${host}, sent through ${url}.`,
    'If it arrived, the relay works.',
  ].join('\r\n');
}
