-- Approvals. An approval request lives inside its call's state (calls.body,
-- `approval`), so it is written in the same transaction as the decision
-- record; approval_id exposes its id for lookups without a second copy.
ALTER TABLE calls ADD COLUMN approval_id TEXT
    GENERATED ALWAYS AS (json_extract(body, '$.approval.id')) VIRTUAL;
CREATE UNIQUE INDEX calls_approval_id ON calls (approval_id) WHERE approval_id IS NOT NULL;
CREATE INDEX calls_approval_created ON calls (created_at) WHERE approval_id IS NOT NULL;
-- Approved calls nobody has claimed for execution yet (see dispatch).
CREATE INDEX calls_approved ON calls (updated_at) WHERE status = 'approved';

-- An approver token's scope: JSON arrays of agent and connector globs;
-- empty arrays allow any.
ALTER TABLE tokens ADD COLUMN scope_agents TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN scope_connectors TEXT NOT NULL DEFAULT '[]';
