// Failed-AUTH counts for every node in limit_auth_failures ('ip': limits.auth_failures per
// client address; 'account': limits.auth_failures_per_account) and the places accounts log in
// from, in limit_known_places. The same rules as auth/throttle.ts and auth/account-throttle.ts,
// so a guesser who spreads tries over the nodes meets the limit as on one node. A failure is one
// row; rows older than the window go as new ones come. Every method rejects when the database
// cannot be asked, and smtpd then refuses AUTH for now (454), never lets it through unchecked.
import type { Pool } from 'pg';
import { KNOWN_PLACE_MS, KNOWN_PLACES_PER_ACCOUNT, loginPlace, plainAddress } from '../mail/client-address.js';
import { msInterval, type Outage } from './pg-limits-common.js';
import type { Rate } from '../config/units.js';

type Kind = 'ip' | 'account';

const WINDOW = msInterval(3);

/** The `count` most recent failures in the window: how long until the oldest of them leaves it (when there are `count`). */
const BLOCK = `
SELECT count(*)::int AS n, COALESCE(EXTRACT(EPOCH FROM min(r.at) + ${WINDOW} - (SELECT now FROM t)) * 1000, 0)::float8 AS wait_ms FROM r`;

const WAIT = `
WITH t AS (SELECT clock_timestamp() AS now),
r AS (SELECT f.at FROM limit_auth_failures f, t WHERE f.kind = $1 AND f.key = $2 AND f.at > t.now - ${WINDOW} ORDER BY f.at DESC LIMIT $4::int)
${BLOCK}`;

const FAIL = `
WITH t AS (SELECT clock_timestamp() AS now),
gone AS (DELETE FROM limit_auth_failures f USING t WHERE f.kind = $1 AND f.at <= t.now - ${WINDOW}),
ins AS (INSERT INTO limit_auth_failures (kind, key, at) SELECT $1, $2, t.now FROM t RETURNING at),
r AS (SELECT a.at FROM (SELECT f.at FROM limit_auth_failures f, t WHERE f.kind = $1 AND f.key = $2 AND f.at > t.now - ${WINDOW}
                        UNION ALL SELECT at FROM ins) a ORDER BY a.at DESC LIMIT $4::int)
${BLOCK}`;

const UNBLOCK = `
WITH t AS (SELECT clock_timestamp() AS now),
d AS (DELETE FROM limit_auth_failures f WHERE f.kind = $1 AND ($2::text[] IS NULL OR f.key = ANY($2::text[])) RETURNING f.key, f.at)
SELECT DISTINCT d.key FROM d, t WHERE d.at > t.now - ${WINDOW} ORDER BY d.key`;

/** Failures of one kind of key, shared by both throttles. */
class FailureTable {
  constructor(private readonly pool: Pool, private readonly outage: Outage, private readonly kind: Kind, readonly rate: Rate) {}

  private async blocked(sql: string, key: string): Promise<number> {
    const row = (await this.outage.run(() => this.pool.query<{ n: number; wait_ms: number }>(sql, [this.kind, key, this.rate.windowMs, this.rate.count]))).rows[0]!;
    return row.n < this.rate.count ? 0 : Math.max(0, Math.ceil(row.wait_ms));
  }

  waitMs(key: string): Promise<number> { return this.blocked(WAIT, key); }
  fail(key: string): Promise<number> { return this.blocked(FAIL, key); }

  async unblock(keys: readonly string[] | 'ALL'): Promise<string[]> {
    const rows = (await this.outage.run(() => this.pool.query<{ key: string }>(UNBLOCK, [this.kind, keys === 'ALL' ? null : [...keys], this.rate.windowMs]))).rows;
    const had = new Set(rows.map((r) => r.key));
    return keys === 'ALL' ? [...had] : keys.filter((k) => had.has(k));
  }
}

/** auth/throttle.ts `AuthFailureCounts`, for every node: keys are plain addresses, as AuthThrottle's. */
export class PgAuthFailures {
  private readonly table: FailureTable;
  constructor(pool: Pool, outage: Outage, readonly rate: Rate) {
    this.table = new FailureTable(pool, outage, 'ip', rate);
  }

  retryAfterMs(ip: string): Promise<number> { return this.table.waitMs(plainAddress(ip)); }
  fail(ip: string): Promise<number> { return this.table.fail(plainAddress(ip)); }
  unblock(ips: readonly string[] | 'ALL'): Promise<string[]> { return this.table.unblock(ips === 'ALL' ? ips : ips.map(plainAddress)); }
}

const KNOWN = `
SELECT EXISTS (SELECT 1 FROM limit_known_places WHERE account = $1 AND place = $2
               AND seen_at > clock_timestamp() - ${msInterval(3)}) AS known`;

const SEEN = `
INSERT INTO limit_known_places (account, place, seen_at) VALUES ($1, $2, clock_timestamp())
ON CONFLICT (account, place) DO UPDATE SET seen_at = EXCLUDED.seen_at`;

/** Keeps an account's most recent places only, as AccountThrottle does. */
const TRIM = `
DELETE FROM limit_known_places k WHERE k.account = $1 AND k.place NOT IN (
  SELECT place FROM limit_known_places WHERE account = $1 ORDER BY seen_at DESC LIMIT $2::int)`;

/** auth/account-throttle.ts `AccountFailureCounts`, for every node. */
export class PgAccountFailures {
  private readonly table: FailureTable;
  constructor(private readonly pool: Pool, private readonly outage: Outage, readonly rate: Rate) {
    this.table = new FailureTable(pool, outage, 'account', rate);
  }

  blockedForMs(account: string): Promise<number> { return this.table.waitMs(account); }

  async retryAfterMs(account: string, ip: string): Promise<number> {
    const wait = await this.table.waitMs(account);
    if (wait === 0) return 0;
    const { known } = (await this.outage.run(() => this.pool.query<{ known: boolean }>(KNOWN, [account, loginPlace(ip), KNOWN_PLACE_MS]))).rows[0]!;
    return known ? 0 : wait;
  }

  fail(account: string): Promise<number> { return this.table.fail(account); }

  async succeeded(account: string, ip: string): Promise<void> {
    await this.outage.run(async () => {
      await this.pool.query(SEEN, [account, loginPlace(ip)]);
      await this.pool.query(TRIM, [account, KNOWN_PLACES_PER_ACCOUNT]);
    });
  }

  unblock(accounts: readonly string[] | 'ALL'): Promise<string[]> { return this.table.unblock(accounts); }
}
