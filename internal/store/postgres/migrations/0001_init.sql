-- warden's schema on PostgreSQL: the same tables as the SQLite store's
-- migrations 0001-0008, in one file. Times are stored as text in the same
-- fixed-width UTC format, so that both backends compare and return them
-- alike; body columns hold the exact bytes that were hashed or written.

-- The audit trail. One row per record, append-only, hash-chained: seq is
-- 1, 2, 3... with no gaps across every replica (see docs/scale-out.md).
CREATE TABLE audit_records (
    seq      BIGINT PRIMARY KEY,
    id       TEXT NOT NULL,
    time     TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    agent    TEXT NOT NULL,
    decision TEXT NOT NULL,
    kind     TEXT NOT NULL,
    call_id  TEXT NOT NULL,
    body     TEXT NOT NULL,
    hash     TEXT NOT NULL
);
CREATE INDEX audit_records_time        ON audit_records (time);
CREATE INDEX audit_records_agent_time  ON audit_records (agent, time);
CREATE INDEX audit_records_tenant_time ON audit_records (tenant, time);
CREATE INDEX audit_records_call_id     ON audit_records (call_id);
CREATE INDEX audit_records_id          ON audit_records (id);

CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY REFERENCES audit_records (seq),
    hash      TEXT  NOT NULL,
    time      TEXT  NOT NULL,
    key_id    TEXT  NOT NULL,
    signature BYTEA NOT NULL
);

-- Append-only: UPDATE, DELETE and TRUNCATE of the trail fail for everyone,
-- the table owner included. Deployments also revoke the privileges from
-- the application role (docs/scale-out.md); verification catches the rest.
CREATE FUNCTION warden_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION warden_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION warden_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION warden_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION warden_append_only();

-- Call state, written in the transaction of the audit record that changes it.
CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    agent       TEXT NOT NULL,
    status      TEXT NOT NULL,
    expires_at  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    args        TEXT NOT NULL,
    body        TEXT NOT NULL,
    revision    BIGINT NOT NULL DEFAULT 0,
    approval_id TEXT GENERATED ALWAYS AS ((body::jsonb) -> 'approval' ->> 'id') STORED
);
CREATE INDEX calls_pending ON calls (expires_at) WHERE status = 'pending';
CREATE INDEX calls_agent ON calls (tenant, agent, created_at);
CREATE UNIQUE INDEX calls_approval_id ON calls (approval_id) WHERE approval_id IS NOT NULL;
CREATE INDEX calls_approval_created ON calls (created_at) WHERE approval_id IS NOT NULL;
CREATE INDEX calls_approved ON calls (updated_at) WHERE status = 'approved';
CREATE INDEX calls_running ON calls (updated_at) WHERE status = 'running';

-- Bearer tokens, stored as SHA-256 hashes only.
CREATE TABLE tokens (
    id               TEXT PRIMARY KEY,
    hash             TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL,
    tenant           TEXT NOT NULL,
    agent            TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    revoked_at       TEXT,
    scope_agents     TEXT NOT NULL DEFAULT '[]',
    scope_connectors TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX tokens_agent ON tokens (tenant, agent);

-- The kill switch. agent '*' kills a whole tenant; tenant '*' kills all.
CREATE TABLE kills (
    tenant TEXT NOT NULL,
    agent  TEXT NOT NULL,
    "by"   TEXT NOT NULL,
    at     TEXT NOT NULL,
    why    TEXT NOT NULL,
    PRIMARY KEY (tenant, agent)
);

-- local:// secrets, sealed (the master key is never stored).
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Config versions and which one is live (the newest activation).
CREATE TABLE config_versions (
    version    TEXT PRIMARY KEY,
    files      TEXT NOT NULL,
    author     TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE config_activations (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version TEXT NOT NULL REFERENCES config_versions (version),
    prev    BIGINT REFERENCES config_activations (id),
    kind    TEXT NOT NULL,
    "by"    TEXT NOT NULL,
    at      TEXT NOT NULL
);

-- Usage per agent per UTC day, for daily budgets.
CREATE TABLE usage (
    tenant     TEXT NOT NULL,
    agent      TEXT NOT NULL,
    day        TEXT NOT NULL,
    tokens     BIGINT NOT NULL DEFAULT 0,
    cost_usd   DOUBLE PRECISION NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, agent, day)
);
