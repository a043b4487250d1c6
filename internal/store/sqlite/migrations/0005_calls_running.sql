-- Finding calls whose execution was interrupted (a crash between the
-- decision and the outcome record) without scanning every call.
CREATE INDEX calls_running ON calls (updated_at) WHERE status = 'running';
