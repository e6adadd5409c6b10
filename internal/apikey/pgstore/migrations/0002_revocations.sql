-- The revocation list (package revocation). Rows expire by themselves:
-- readers ignore rows whose expires_at has passed, and replicas prune them.

CREATE TABLE {schema}.revocations (
    id         text COLLATE "C" PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('jti', 'token', 'subject', 'client', 'issuer_subject')),
    issuer     text NOT NULL DEFAULT '',
    value      text NOT NULL,
    before     timestamptz,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX revocations_expires_at_idx ON {schema}.revocations (expires_at);
