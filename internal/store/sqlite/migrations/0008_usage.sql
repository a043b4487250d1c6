-- Usage per agent per UTC day, what daily budgets (tokens_per_day,
-- usd_per_day) are checked against. Every row's increments are audited:
-- each comes from a usage or reported_outcome record written in the same
-- transaction.
CREATE TABLE usage (
    tenant     TEXT NOT NULL,
    agent      TEXT NOT NULL,
    day        TEXT NOT NULL,      -- UTC, YYYY-MM-DD
    tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd   REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, agent, day)
) STRICT;
