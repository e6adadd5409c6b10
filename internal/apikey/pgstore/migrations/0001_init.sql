-- Consumers and their hashed API keys. {schema} is replaced by the quoted
-- schema name before the file runs.
--
-- Ids use the "C" collation: lists order by (created_at, id) in byte order
-- whatever the database's default collation is.

CREATE TABLE {schema}.consumers (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    groups     text[] NOT NULL DEFAULT '{}',
    tags       text[] NOT NULL DEFAULT '{}',
    metadata   jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);

CREATE TABLE {schema}.api_keys (
    id           text COLLATE "C" PRIMARY KEY,
    consumer_id  text COLLATE "C" NOT NULL REFERENCES {schema}.consumers (id) ON DELETE CASCADE,
    -- Keyed hash of the whole key string: the lookup index. The key itself
    -- is never stored.
    hash         bytea NOT NULL UNIQUE,
    hint         text NOT NULL DEFAULT '',
    name         text NOT NULL DEFAULT '',
    scopes       text[] NOT NULL DEFAULT '{}',
    routes       text[] NOT NULL DEFAULT '{}',
    tier         text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    rotated_to   text NOT NULL DEFAULT '',
    last_used_at timestamptz
);

CREATE INDEX api_keys_consumer_id_idx ON {schema}.api_keys (consumer_id);
