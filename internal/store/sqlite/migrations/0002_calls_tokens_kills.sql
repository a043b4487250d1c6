-- Call state: what GET /v1/calls/{id} answers, written in the same
-- transaction as the audit record that changes it.
CREATE TABLE calls (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    agent      TEXT NOT NULL,
    status     TEXT NOT NULL,
    expires_at TEXT,               -- fixed-width UTC; set while pending
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    args       TEXT NOT NULL,      -- JSON, as recorded in the audit trail
    body       TEXT NOT NULL       -- JSON of the state (decision, rules, result...)
) STRICT;
CREATE INDEX calls_pending ON calls (expires_at) WHERE status = 'pending';
CREATE INDEX calls_agent ON calls (tenant, agent, created_at);

-- Bearer tokens, stored as SHA-256 hashes only.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,      -- agent, admin, approver, auditor
    tenant     TEXT NOT NULL,      -- '' = every tenant (admin, auditor)
    agent      TEXT NOT NULL,      -- agent tokens only
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
CREATE INDEX tokens_agent ON tokens (tenant, agent);

-- The kill switch. agent '*' kills a whole tenant; tenant '*' kills all.
CREATE TABLE kills (
    tenant TEXT NOT NULL,
    agent  TEXT NOT NULL,
    by     TEXT NOT NULL,
    at     TEXT NOT NULL,
    why    TEXT NOT NULL,
    PRIMARY KEY (tenant, agent)
) STRICT;
