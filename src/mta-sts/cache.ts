// The MTA-STS policies smarthost has fetched, one file per domain under
// data_dir/mta-sts/, so that a restart keeps an enforce policy until its
// max_age runs out (RFC 8461 §5.1: a cached policy outlives a failed refresh).
// Written like the queue's state files: temp file, fsync, rename.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { StsPolicy } from './sts-policy.js';

export interface CachedPolicy extends StsPolicy {
  readonly domain: string;
  /** The TXT record's id this policy was fetched under. */
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly fetchedAt: number;
  /** fetchedAt + max_age: after this the policy no longer applies. */
  readonly expiresAt: number;
}

export const cacheDir = (dataDir: string) => path.join(dataDir, 'mta-sts');

/** A domain as a file name: A-labels only, so nothing can leave the folder. */
const fileOf = (dir: string, domain: string) => /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(domain) && !domain.includes('..') ? path.join(dir, `${domain}.json`) : undefined;

function parse(text: string, domain: string): CachedPolicy | undefined {
  try {
    const p = JSON.parse(text) as CachedPolicy;
    const ok = p.domain === domain && typeof p.id === 'string' && ['enforce', 'testing', 'none'].includes(p.mode)
      && Array.isArray(p.mx) && p.mx.every((m) => typeof m === 'string')
      && [p.maxAge, p.fetchedAt, p.expiresAt].every((n) => typeof n === 'number' && Number.isFinite(n));
    return ok ? Object.freeze({ ...p, mx: Object.freeze([...p.mx]) }) : undefined;
  } catch {
    return undefined;
  }
}

/** The policy on disk for `domain`, expired or not; undefined when there is none or it cannot be read. */
export async function loadPolicy(dir: string, domain: string): Promise<CachedPolicy | undefined> {
  const file = fileOf(dir, domain);
  if (!file) return undefined;
  return parse(await fsp.readFile(file, 'utf8').catch(() => ''), domain);
}

/** The same, synchronously, for `smarthost route test`. */
export function loadPolicySync(dir: string, domain: string): CachedPolicy | undefined {
  const file = fileOf(dir, domain);
  if (!file) return undefined;
  try { return parse(fs.readFileSync(file, 'utf8'), domain); } catch { return undefined; }
}

/** Replaces the domain's file atomically; throws when the folder cannot be written. */
export async function savePolicy(dir: string, p: CachedPolicy): Promise<void> {
  const file = fileOf(dir, p.domain);
  if (!file) return;
  await fsp.mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`; // an old and a new delivery thread share the pid
  const fh = await fsp.open(tmp, 'w', 0o640);
  try {
    await fh.writeFile(JSON.stringify(p) + '\n');
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
}

/** An expired policy is of no further use (§5.1: then the domain counts as having none until a fetch). */
export async function removePolicy(dir: string, domain: string): Promise<void> {
  const file = fileOf(dir, domain);
  if (file) await fsp.rm(file, { force: true });
}
