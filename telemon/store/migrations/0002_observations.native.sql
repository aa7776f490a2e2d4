-- Observations on plain PostgreSQL: declarative range partitioning by week of measured_at.
--
-- No foreign keys on this table: they would cost every COPY a lookup per row, and ingest has
-- already validated gateway, patient and device against the reference tables.

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
    -- (gateway, seq) names an observation; the partition key must be part of any unique key on
    -- a partitioned table, and a redelivered observation carries the same measured_at.
    CONSTRAINT observations_once UNIQUE (gateway_id, seq, measured_at)
) PARTITION BY RANGE (measured_at);

CREATE INDEX observations_patient_metric_time
    ON observations (patient_id, metric_id, measured_at DESC);

-- Weekly partitions (ISO weeks, Monday 00:00 UTC), created on demand by ingest before a write.
CREATE FUNCTION telemon_ensure_observation_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    week_start timestamptz := date_trunc('week', p_from AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition_name text;
    created integer := 0;
BEGIN
    -- Serialise creation across ingest workers; readers and writers are not blocked.
    PERFORM pg_advisory_xact_lock(hashtext('telemon_observation_partitions'));
    WHILE week_start <= p_to LOOP
        partition_name := 'observations_' || to_char(week_start AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(partition_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
                partition_name, week_start, week_start + interval '7 days');
            created := created + 1;
        END IF;
        week_start := week_start + interval '7 days';
    END LOOP;
    RETURN created;
END $$;

-- Retention: drop whole partitions that end before the cutoff (no row-by-row DELETE).
CREATE FUNCTION telemon_drop_expired_observations(p_cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.oid::regclass AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]
                   ::timestamptz AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'observations'::regclass
    LOOP
        IF part.upper_bound <= p_cutoff THEN
            EXECUTE format('DROP TABLE %s', part.name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

-- Hourly per-patient per-metric rollup, refreshed by ingest for the hours it has written.
-- Observations are only ever removed by whole partitions, so an upsert keeps it exact.
CREATE TABLE observation_hourly (
    bucket      timestamptz NOT NULL,
    patient_id  bigint NOT NULL,
    metric_id   smallint NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    mean        double precision NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (patient_id, metric_id, bucket)
);

-- p_patients limits the refresh to the patients a batch touched (NULL: everyone).
CREATE FUNCTION telemon_refresh_observation_hourly(
    p_from timestamptz, p_to timestamptz, p_patients bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    WITH refreshed AS (
        INSERT INTO observation_hourly (bucket, patient_id, metric_id, min, max, mean, count)
        SELECT date_trunc('hour', measured_at), patient_id, metric_id,
               min(value), max(value), avg(value), count(*)
        FROM observations
        WHERE measured_at >= date_trunc('hour', p_from) AND measured_at < p_to
          AND (p_patients IS NULL OR patient_id = ANY (p_patients))
        GROUP BY 1, 2, 3
        ON CONFLICT (patient_id, metric_id, bucket) DO UPDATE
            SET min = excluded.min, max = excluded.max, mean = excluded.mean,
                count = excluded.count
        RETURNING 1
    )
    SELECT count(*) FROM refreshed
$$;

-- Retention and compression are applied by ingest's housekeeping on this backend.
CREATE FUNCTION telemon_apply_storage_policies(p_retention interval, p_compress_after interval)
RETURNS void LANGUAGE plpgsql AS $$ BEGIN RETURN; END $$;
