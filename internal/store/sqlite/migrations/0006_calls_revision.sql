-- Optimistic concurrency for call state: every change bumps revision, and
-- a change made to an older revision is refused, so two concurrent votes on
-- one approval cannot overwrite each other.
ALTER TABLE calls ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
