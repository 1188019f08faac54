// stunnel.conf, as far as an import needs it: the client services that turn a
// local port into TLS to a provider (the classic "relayhost = [127.0.0.1]:2525"
// set-up). Format: "key = value" lines, "[service]" headers, ";" or "#" comments;
// keys before the first header are global and apply to every service.

export interface StunnelService {
  readonly name: string;
  readonly client: boolean;
  /** The local port it accepts on. */
  readonly acceptPort?: number;
  readonly acceptHost?: string;
  readonly connectHost?: string;
  readonly connectPort?: number;
  /** verifyChain = yes, or verify >= 2: the provider's certificate is checked. */
  readonly verifies: boolean;
  readonly caFile?: string;
  readonly options: ReadonlyMap<string, string>;
}

const PORTS: Record<string, number> = { smtp: 25, smtps: 465, submission: 587, submissions: 465 };
const port = (p: string) => (/^\d+$/.test(p) ? Number(p) : PORTS[p]);

/** "2525", "127.0.0.1:2525", "smtp.example.com:smtps" -> host and port. */
function hostPort(v: string): { host?: string; port?: number } {
  const m = /^(?:(.*):)?([^:]+)$/.exec(v.trim());
  if (!m) return {};
  const p = port(m[2]!);
  return { ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}), ...(p !== undefined ? { port: p } : {}) };
}

function service(name: string, global: Map<string, string>, own: Map<string, string>): StunnelService {
  const o = new Map([...global, ...own]);
  const accept = hostPort(o.get('accept') ?? '');
  const connect = hostPort(o.get('connect') ?? '');
  const verify = Number(o.get('verify') ?? '0');
  return {
    name, options: o, client: /^(yes|true|1)$/i.test(o.get('client') ?? 'no'),
    verifies: /^yes$/i.test(o.get('verifychain') ?? '') || verify >= 2,
    ...(accept.port !== undefined ? { acceptPort: accept.port } : {}), ...(accept.host ? { acceptHost: accept.host } : {}),
    ...(connect.port !== undefined ? { connectPort: connect.port } : {}), ...(connect.host ? { connectHost: connect.host } : {}),
    ...(o.has('cafile') ? { caFile: o.get('cafile')! } : {}),
  };
}

export function parseStunnelConf(text: string): StunnelService[] {
  const global = new Map<string, string>();
  const sections: Array<{ name: string; own: Map<string, string> }> = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) { sections.push({ name: header[1]!, own: new Map() }); continue; }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    (sections[sections.length - 1]?.own ?? global).set(kv[1]!.toLowerCase(), kv[2]!);
  }
  return sections.map((s) => service(s.name, global, s.own));
}

/** The client service whose accept port is `localPort` (on a loopback or any address). */
export function tunnelFor(services: readonly StunnelService[], localPort: number): StunnelService | undefined {
  return services.find((s) => s.client && s.acceptPort === localPort && s.connectHost !== undefined
    && (s.acceptHost === undefined || /^(127\.|::1$|localhost$|0\.0\.0\.0$)/.test(s.acceptHost)));
}
