-- Ingest's own bookkeeping.
--
-- Hours whose hourly rollup is stale: written in the same transaction as the observations, so a
-- crash between the commit and the refresh loses no refresh; ingest's housekeeping consumes them.
CREATE TABLE ingest_rollup_queue (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id  bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    queued_at   timestamptz NOT NULL DEFAULT now()
);
