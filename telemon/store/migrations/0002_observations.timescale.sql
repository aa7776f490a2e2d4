-- Observations on TimescaleDB: a hypertable with compression, retention and a continuous
-- aggregate. Same columns, keys and function names as the native variant, so nothing above the
-- store knows which one it runs on. The policies' intervals are set by
-- telemon_apply_storage_policies(), called by `telemon migrate` with the configured values.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE observations (
    measured_at  timestamptz NOT NULL,
    patient_id   bigint NOT NULL,
    metric_id    smallint NOT NULL,
    value        double precision NOT NULL,
    gateway_id   bigint NOT NULL,
    seq          bigint NOT NULL,
    device_id    bigint,
    received_at  timestamptz,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    flags        text[],
    context      jsonb,
    CONSTRAINT observations_once UNIQUE (gateway_id, seq, measured_at)
);

SELECT create_hypertable('observations', 'measured_at', chunk_time_interval => INTERVAL '7 days');

CREATE INDEX observations_patient_metric_time
    ON observations (patient_id, metric_id, measured_at DESC);

ALTER TABLE observations SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id, metric_id',
    timescaledb.compress_orderby = 'measured_at DESC'
);

CREATE MATERIALIZED VIEW observation_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket, patient_id, metric_id,
       min(value) AS min, max(value) AS max, avg(value) AS mean, count(*) AS count
FROM observations
GROUP BY bucket, patient_id, metric_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('observation_hourly',
    start_offset => INTERVAL '30 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

CREATE FUNCTION telemon_apply_storage_policies(p_retention interval, p_compress_after interval)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remove_retention_policy('observations', if_exists => true);
    PERFORM add_retention_policy('observations', p_retention);
    PERFORM remove_compression_policy('observations', if_exists => true);
    PERFORM add_compression_policy('observations', p_compress_after);
END $$;

-- Chunks are created by TimescaleDB, retention runs as a policy job and the aggregate
-- refreshes itself (and answers for recent hours in real time): these are no-ops kept for the
-- one interface ingest calls on either backend.
CREATE FUNCTION telemon_ensure_observation_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;

CREATE FUNCTION telemon_drop_expired_observations(p_cutoff timestamptz)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;

CREATE FUNCTION telemon_refresh_observation_hourly(
    p_from timestamptz, p_to timestamptz, p_patients bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
