-- Windows of late rows the TimescaleDB aggregate's policy no longer covers (see the timescale
-- variant). The native rollup is refreshed exactly by ingest's housekeeping, which never writes
-- here; the table exists on both backends so that the schema, and the code reading it, are one.

CREATE TABLE rollup_late_windows (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL CHECK (window_end > window_start),
    queued_at     timestamptz NOT NULL DEFAULT now()
);

-- The services queue windows; only the owner's job takes them off.
REVOKE UPDATE, DELETE ON rollup_late_windows FROM telemon_app;
