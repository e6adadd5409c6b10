-- Quota counters (package quota): one row per counter and window. A row
-- is counted by one atomic upsert per request; rows past expires_at are
-- no longer read and are pruned.

CREATE TABLE {schema}.quota_counts (
    key        bytea NOT NULL,
    win        bigint NOT NULL,
    count      bigint NOT NULL,
    exceeded   boolean NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, win)
);

CREATE INDEX quota_counts_expires_at_idx ON {schema}.quota_counts (expires_at);
