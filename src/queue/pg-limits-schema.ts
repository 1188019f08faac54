// The tables behind cluster-wide limits: one step of the store's migrations (pg-schema.ts).
// Times are the database's (clock_timestamp()), never a node's clock, so
// nodes whose clocks disagree still count one window. Every row expires by itself: a node that
// dies leaves nothing that holds a limit for longer than its lease.
export const LIMITS_SQL = `
CREATE TABLE limit_keys (
  key text PRIMARY KEY                -- one row per limited thing; taking from it locks the row
);
CREATE TABLE limit_holds (            -- connection slots and rate permits of routes
  id bigserial PRIMARY KEY,
  key text NOT NULL,                  -- 'slots:route:NAME' or 'rate:route:NAME'
  node text NOT NULL,                 -- who holds it (for people reading the table)
  expires_at timestamptz NOT NULL     -- renewed while held; a finished rate permit: its finish + window
);
CREATE INDEX limit_holds_key ON limit_holds (key, expires_at);
CREATE TABLE limit_quota_counts (     -- recipients counted against route quotas
  id bigserial PRIMARY KEY,
  key text NOT NULL,                  -- the route key ('relay', 'route:NAME')
  at timestamptz NOT NULL,
  n integer NOT NULL CHECK (n >= 0)
);
CREATE INDEX limit_quota_counts_key ON limit_quota_counts (key, at);
CREATE TABLE limit_auth_failures (    -- failed AUTH, per client address ('ip') and per account ('account')
  kind text NOT NULL,
  key text NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX limit_auth_failures_key ON limit_auth_failures (kind, key, at);
CREATE INDEX limit_auth_failures_at ON limit_auth_failures (kind, at);
CREATE TABLE limit_known_places (     -- where an account logged in from lately (limits.auth_failures_per_account)
  account text NOT NULL,
  place text NOT NULL,
  seen_at timestamptz NOT NULL,
  PRIMARY KEY (account, place)
);`;
