// Two independent DKIM verifiers for tests, each given the TXT records instead of DNS:
// mailauth's dkimVerify (the library we sign with) and Debian's python3-dkim (dkimpy),
// which shares no code with it. Each returns one result per DKIM-Signature, top first.
import { spawnSync } from 'node:child_process';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';

/** "selector._domainkey.domain" -> the record text. */
export type DkimRecords = Record<string, string>;

export interface Verdict { readonly domain: string; readonly selector: string; readonly result: string }

export async function mailauthVerdicts(message: Buffer, records: DkimRecords): Promise<Verdict[]> {
  const resolver = async (name: string, type: string) => {
    const text = records[name.toLowerCase().replace(/\.$/, '')];
    if (type !== 'TXT' || text === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
    return [[text]];
  };
  const r = await dkimVerify(message, { resolver } as Parameters<typeof dkimVerify>[1]);
  return r.results.map((x) => ({ domain: x.signingDomain ?? '', selector: x.selector ?? '', result: x.status.result }));
}

const PYTHON = `
import sys, json, dkim
records = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
def dnsfunc(name, timeout=5):
    n = (name.decode() if isinstance(name, bytes) else name).rstrip('.').lower()
    return records[n].encode() if n in records else None
d = dkim.DKIM(msg)
out = []
sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
for i, v in enumerate(sigs):
    tags = dict((p.split(b'=', 1)[0].strip().decode(), p.split(b'=', 1)[1].strip().decode()) for p in v.split(b';') if b'=' in p)
    ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
    out.append({'domain': tags.get('d', ''), 'selector': tags.get('s', ''), 'result': 'pass' if ok else 'fail'})
print(json.dumps(out))
`;

/** dkimpy's verdicts (Debian's /usr/bin/python3, where python3-dkim is installed). */
export function pythonVerdicts(message: Buffer, records: DkimRecords): Verdict[] {
  const r = spawnSync('/usr/bin/python3', ['-c', PYTHON, JSON.stringify(records)], { input: message, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-dkim failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Verdict[];
}
