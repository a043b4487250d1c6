-- The audit trail. One row per record, append-only, hash-chained.
--
-- body is the record's canonical encoding (every field but hash, see
-- audit.Record.Canonical) and hash its SHA-256. The other columns copy fields
-- of body so that they can be filtered on and indexed. Readers rebuild a
-- record from body with these columns taking precedence, so an UPDATE of a
-- column or of body changes what verification hashes, and is detected.
CREATE TABLE audit_records (
    seq      INTEGER PRIMARY KEY,  -- 1, 2, 3... with no gaps, assigned by the writer
    id       TEXT    NOT NULL,
    time     TEXT    NOT NULL,     -- UTC, fixed width so that text order is time order
    tenant   TEXT    NOT NULL,
    agent    TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    call_id  TEXT    NOT NULL,
    body     TEXT    NOT NULL,
    hash     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_records_time       ON audit_records (time);
CREATE INDEX audit_records_agent_time ON audit_records (agent, time);
CREATE INDEX audit_records_tenant_time ON audit_records (tenant, time);
CREATE INDEX audit_records_call_id    ON audit_records (call_id);

-- Signed statements that the record at seq had hash hash. signature is
-- Ed25519 over audit.CheckpointMessage(seq, hash, time) by key key_id, a key
-- this database does not hold.
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY REFERENCES audit_records (seq),
    hash      TEXT    NOT NULL,
    time      TEXT    NOT NULL,    -- UTC, RFC 3339 with nanoseconds, exactly as signed
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL
) STRICT;

-- Guard rails against mistakes, not attackers: whoever can write the file can
-- drop these, and verification is what catches that.
CREATE TRIGGER audit_records_append_only_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_records_append_only_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
