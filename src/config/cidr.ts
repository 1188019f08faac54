// IP networks as written in smarthost.toml ("192.0.2.0/24", "2001:db8::/32", or one
// address), parsed once into ipaddr.js ranges.
import ipaddr from 'ipaddr.js';
import type { Cidr } from './types.js';

export function parseCidr(text: string): Cidr | undefined {
  try {
    const range = text.includes('/') ? ipaddr.parseCIDR(text) : (() => {
      const ip = ipaddr.parse(text);
      return [ip, ip.kind() === 'ipv4' ? 32 : 128] as [typeof ip, number];
    })();
    return Object.freeze({ text, range: Object.freeze(range) as Cidr['range'] });
  } catch {
    return undefined;
  }
}

/** "host:port" or "[v6]:port" -> parts, or undefined. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}
