-- Config versions: every config ever applied, as the files it was loaded
-- from, so a version can be re-loaded exactly. version is the config's
-- content hash (config.Config.Version).
CREATE TABLE config_versions (
    version    TEXT PRIMARY KEY,
    files      TEXT NOT NULL,      -- JSON object: file name → content
    author     TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- Which version is live: the newest row. Every apply and rollback adds one.
-- prev is the activation that was live before this one (NULL: none), so a
-- rollback steps back along it like an undo, not back and forth between two
-- versions.
CREATE TABLE config_activations (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL REFERENCES config_versions (version),
    prev    INTEGER REFERENCES config_activations (id),
    kind    TEXT NOT NULL,         -- apply, rollback
    by      TEXT NOT NULL,
    at      TEXT NOT NULL
) STRICT;
