-- The services' own database role: telemon_app, a NOLOGIN group role. The login user that
-- ingest, alerts and the dashboard connect as is a member of it (deploy/postgres/10-roles.sh);
-- it is no superuser and owns nothing, so a compromised service can read and write rows but
-- cannot change the schema, drop a table or rewrite the audit trail. The role that runs the
-- migrations owns the schema (docs/deployment.md, "Database roles").
--
-- Privileges are granted by the owner of each object, that is the role running this file; the
-- default privileges below apply to the tables that same role creates in later migrations, so
-- always migrate as the same role.

-- Roles are cluster-wide: the role may already exist (created by the compose init script, a
-- DBA, or another telemon database on the same server migrating at this very moment).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'telemon_app') THEN
        CREATE ROLE telemon_app NOLOGIN;
    END IF;
EXCEPTION
    -- A concurrent CREATE ROLE committed first: duplicate_object, or unique_violation when
    -- this one waited on the same catalog row.
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'the role telemon_app does not exist and % may not create roles',
            current_user
            USING HINT = 'Create it once as a superuser or a role with CREATEROLE '
                '(CREATE ROLE telemon_app NOLOGIN; deploy/postgres/10-roles.sh does), '
                'then migrate again.';
END $$;

-- PostgreSQL 15 no longer lets every role create objects in public; older servers and clusters
-- upgraded from them still do. Nobody but the owner creates objects here. (Only a warning, not
-- an error, when the migrating role does not own the schema.)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO telemon_app;

-- Rows: read and write everything, then take back what no service does.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO telemon_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO telemon_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO telemon_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO telemon_app;

-- Written by `telemon migrate` only.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations, storage_settings, metrics FROM telemon_app;
-- The audit trail is appended to and read, never changed (dashboard.audit).
REVOKE UPDATE, DELETE ON audit_log FROM telemon_app;
-- Observations are stored once and removed only by retention, whole partitions at a time
-- (telemon_apply_observation_retention below). On TimescaleDB (2.5 and later) a grant or
-- revoke on the hypertable, by name or ALL IN SCHEMA, reaches its chunks and its compressed
-- hypertable, and new chunks copy the hypertable's privileges (timescale/timescaledb pull
-- requests 2116, 3213 and 3712); inserting a row that needs a new chunk takes INSERT on the
-- hypertable (https://docs.timescale.com/api/latest/hypertable/create_chunk/).
REVOKE UPDATE, DELETE ON observations FROM telemon_app;
REVOKE DELETE ON observation_hourly FROM telemon_app;

-- The DDL the services need is done for them by functions that run as their owner
-- (SECURITY DEFINER). Following "Writing SECURITY DEFINER Functions Safely"
-- (https://www.postgresql.org/docs/current/sql-createfunction.html#SQL-CREATEFUNCTION-SECURITY):
-- a fixed search_path of trusted schemas only, pg_temp last so that no temporary object of the
-- caller can stand in for a table or function (pg_catalog is searched first when not listed;
-- listed first, it would also become where new partitions are created, which is refused), and
-- EXECUTE revoked from PUBLIC and granted to telemon_app alone.

-- Native partitions: the function that creates them (0002) becomes owner-only; the services
-- call it through a wrapper that also withholds every privilege on the partitions themselves,
-- which the default privileges above would otherwise grant: rows are read and written through
-- observations, whose grants apply, and a partition named directly would bypass them.
-- On TimescaleDB both are no-ops (chunks are TimescaleDB's).
ALTER FUNCTION telemon_ensure_observation_partitions(timestamptz, timestamptz)
    RENAME TO telemon_create_observation_partitions;
REVOKE ALL ON FUNCTION telemon_create_observation_partitions(timestamptz, timestamptz)
    FROM PUBLIC;

CREATE FUNCTION telemon_withhold_partition_privileges()
RETURNS integer LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    part regclass;
    withheld integer := 0;
BEGIN
    FOR part IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent = 'observations'::regclass
          AND has_table_privilege('telemon_app', i.inhrelid, 'SELECT, INSERT, UPDATE, DELETE')
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM telemon_app', part);
        withheld := withheld + 1;
    END LOOP;
    RETURN withheld;
END $$;
REVOKE ALL ON FUNCTION telemon_withhold_partition_privileges() FROM PUBLIC;
-- The partitions created before this migration (native) or the chunks (TimescaleDB, whose
-- inheritance children are chunks: their privileges follow the hypertable's anyway).
SELECT telemon_withhold_partition_privileges()
WHERE (SELECT relkind FROM pg_class WHERE oid = 'observations'::regclass) = 'p';

CREATE FUNCTION telemon_ensure_observation_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created integer := telemon_create_observation_partitions(p_from, p_to);
BEGIN
    IF created > 0 THEN
        PERFORM telemon_withhold_partition_privileges();
    END IF;
    RETURN created;
END $$;
REVOKE ALL ON FUNCTION telemon_ensure_observation_partitions(timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION telemon_ensure_observation_partitions(timestamptz, timestamptz)
    TO telemon_app;

-- Retention: dropping partitions before an arbitrary cutoff stays with the owner; the services
-- may only apply the retention that `telemon migrate` configured (storage_settings), so they
-- cannot drop observations that are still within it.
REVOKE ALL ON FUNCTION telemon_drop_expired_observations(timestamptz) FROM PUBLIC;

CREATE FUNCTION telemon_apply_observation_retention()
RETURNS integer LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (SELECT telemon_drop_expired_observations(now() - retention) FROM storage_settings), 0)
$$;
REVOKE ALL ON FUNCTION telemon_apply_observation_retention() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION telemon_apply_observation_retention() TO telemon_app;

-- Runs with the caller's rights (its grants on observations and observation_hourly suffice).
REVOKE ALL ON FUNCTION telemon_refresh_observation_hourly(timestamptz, timestamptz, bigint[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION telemon_refresh_observation_hourly(timestamptz, timestamptz, bigint[])
    TO telemon_app;

-- Policies are set by `telemon migrate` alone.
REVOKE ALL ON FUNCTION telemon_apply_storage_policies(interval, interval) FROM PUBLIC;
