-- Users of the basic credential method (docs/basic-auth.md). hash is an
-- argon2id PHC string or a bcrypt hash, checked by the gateway whenever it
-- reads it; plaintext passwords are refused by every writer and reader.

CREATE TABLE {schema}.basic_users (
    name       text COLLATE "C" PRIMARY KEY,
    hash       text NOT NULL CHECK (hash LIKE '$%'),
    roles      text[] NOT NULL DEFAULT '{}',
    groups     text[] NOT NULL DEFAULT '{}',
    scopes     text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL
);
