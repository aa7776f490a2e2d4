-- Late rows older than observation_hourly's policy window (30 days, migration 0002) would stay
-- out of the aggregate for good. Ingest's housekeeping queues their hour-aligned windows here;
-- a TimescaleDB job owned by the role running this migration (the schema's owner) refreshes
-- them. Not the services themselves: only the aggregate's owner may refresh it, and the
-- services' role owns nothing (migration 0012); nor a SECURITY DEFINER function, because the
-- refresh cannot run inside a function or a transaction block.

CREATE TABLE rollup_late_windows (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL CHECK (window_end > window_start),
    queued_at     timestamptz NOT NULL DEFAULT now()
);

-- A job's procedure takes (job_id, config) and runs as the job's owner
-- (https://www.tigerdata.com/docs/reference/timescaledb/jobs-automation/add_job). Each window
-- is refreshed and taken off the table in its own transaction (COMMIT in a procedure), so a
-- failure leaves the rest queued for the next run. refresh_continuous_aggregate from a job:
-- https://docs.timescale.com/api/latest/continuous-aggregates/refresh_continuous_aggregate/
-- (supported from jobs since 2.5: https://github.com/timescale/timescaledb/issues/3145).
CREATE PROCEDURE telemon_refresh_late_rollups(job_id int, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    w record;
BEGIN
    FOR w IN SELECT id, window_start, window_end FROM rollup_late_windows ORDER BY id LOOP
        CALL refresh_continuous_aggregate('observation_hourly', w.window_start, w.window_end);
        DELETE FROM rollup_late_windows WHERE id = w.id;
        COMMIT;
    END LOOP;
END $$;

REVOKE ALL ON PROCEDURE telemon_refresh_late_rollups(int, jsonb) FROM PUBLIC;

SELECT add_job('telemon_refresh_late_rollups', INTERVAL '5 minutes');

-- The services queue windows; only the owner's job takes them off.
REVOKE UPDATE, DELETE ON rollup_late_windows FROM telemon_app;
