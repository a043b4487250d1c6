-- local:// secrets: one row per name holding its current version,
-- encrypted with AES-256-GCM under the master key named by key_id (the
-- master key itself is never stored). Rotation replaces the row with the
-- next version; revocation wipes the ciphertext and keeps the row, so the
-- name, its last version and the dates stay listable.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,   -- first version
    updated_at TEXT NOT NULL,   -- current version
    revoked_at TEXT
) STRICT;
