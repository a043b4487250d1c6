-- calls.approval_id was generated from (body::jsonb): jsonb refuses a
-- \u0000 escape and a lone surrogate (\ud800) in a string, so a call whose
-- connector result or error held one could not be saved. It becomes a
-- plain column that warden writes itself (the approval id is in the call's
-- state anyway); existing values are kept, and the indexes with them.
ALTER TABLE calls ALTER COLUMN approval_id DROP EXPRESSION;

-- A replica still running the previous version (a rolling upgrade) does
-- not write approval_id: fill it from the body when it is missing, as the
-- generated column did, except that a body jsonb refuses leaves it NULL
-- instead of failing the commit.
CREATE FUNCTION warden_calls_approval_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approval_id IS NULL AND strpos(NEW.body, '"approval"') > 0 THEN
        BEGIN
            NEW.approval_id := (NEW.body::jsonb) -> 'approval' ->> 'id';
        EXCEPTION WHEN data_exception THEN
            NEW.approval_id := NULL;
        END;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER calls_approval_id BEFORE INSERT OR UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION warden_calls_approval_id();
