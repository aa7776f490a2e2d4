-- Access transparency (issue 20): the audit log as the Garante's guidelines on health dossiers
-- (4 Jun 2015) and EHDS art. 9 want it: every access kept at least 24 months, answerable per
-- patient (who, in which role, through which relation, when, from where), and tamper-evident.
--
-- Tamper evidence: every row carries a sequence number and the SHA-256 of the previous row's
-- hash followed by its own canonical text (telemon_audit_canonical). The chain's head (last
-- sequence number and hash) lives in audit_chain, which only the trigger below writes: a row
-- changed, removed or inserted behind the application's back breaks the chain, and removing
-- the newest rows leaves the head pointing past them. `telemon audit verify` recomputes it
-- (telemon/store/audit_chain.py, which spells the canonical text out itself, so a replaced
-- function here cannot vouch for a rewritten row).
--
-- Concurrent writers: the trigger locks the head row (SELECT ... FOR UPDATE) until its
-- transaction ends, so the chain is extended by one transaction at a time, in commit order; a
-- writer in READ COMMITTED waits and then reads the head its predecessor left. Under REPEATABLE
-- READ a concurrent head update is a serialisation failure, never a fork; seq is UNIQUE anyway.

ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check
    CHECK (role IN ('gp', 'nurse', 'admin', 'privacy'));

ALTER TABLE audit_log
    -- Who the actor was at the time (names change; the report states the name then).
    ADD COLUMN actor_name text,
    -- Through what the access was allowed: 'own_gp' (the patient's GP) or 'care_team' (a member
    -- of the patient's care team, named in care_team); NULL for staff who read no clinical data.
    ADD COLUMN relation   text CHECK (relation IN ('own_gp', 'care_team')),
    ADD COLUMN care_team  text,
    ADD COLUMN seq        bigint UNIQUE,
    ADD COLUMN prev_hash  bytea,
    ADD COLUMN row_hash   bytea;

-- A patient's accesses include the lists that showed them (details.patients): the access
-- report finds those rows by containment.
CREATE INDEX audit_log_listed ON audit_log USING gin ((details -> 'patients') jsonb_path_ops);

CREATE TABLE audit_chain (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq     bigint NOT NULL,
    last_hash    bytea NOT NULL,
    -- Rows up to pruned_seq were removed by retention (telemon_apply_audit_retention); the
    -- first row kept must follow pruned_hash.
    pruned_seq   bigint NOT NULL DEFAULT 0,
    pruned_hash  bytea NOT NULL,
    pruned_at    timestamptz
);
INSERT INTO audit_chain (last_seq, last_hash, pruned_hash)
VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000',
        '\x0000000000000000000000000000000000000000000000000000000000000000');
-- Read by `telemon audit verify`, written by the trigger alone.
REVOKE ALL ON audit_chain FROM telemon_app;
GRANT SELECT ON audit_chain TO telemon_app;

-- The text hashed for a row. Every column but the hashes, in a fixed order, as a JSON array
-- (jsonb's text form is deterministic); the time in UTC whatever the session's time zone.
-- Keep in step with CANONICAL in telemon/store/audit_chain.py (a test compares them).
CREATE FUNCTION telemon_audit_canonical(r audit_log) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_array(
        r.seq, r.id, to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        r.actor_id, r.actor_username, r.actor_name, r.actor_role, r.action, r.patient_id,
        r.object_type, r.object_id, r.details, r.client_address::text, r.relation, r.care_team
    )::text
$$;

-- The relation through which a staff member reaches a patient, as dashboard.authz.patient_scope
-- grants it: the GP of their own patients, a nurse through the care team they work in.
CREATE FUNCTION telemon_audit_relation(p_actor bigint, p_patient bigint,
                                       OUT relation text, OUT care_team text)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN p.gp_id = p_actor THEN 'own_gp'
                WHEN m.staff_id IS NOT NULL THEN 'care_team' END,
           CASE WHEN m.staff_id IS NOT NULL AND p.gp_id <> p_actor THEN t.name END
    FROM patients p
    LEFT JOIN care_teams t ON t.id = p.care_team_id
    LEFT JOIN care_team_members m ON m.care_team_id = p.care_team_id AND m.staff_id = p_actor
    WHERE p.id = p_patient
$$;

-- The rows written so far join the chain in id order, with what can be said of them now.
DO $$
DECLARE
    r audit_log;
    previous bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    n bigint := 0;
BEGIN
    UPDATE audit_log a SET actor_name = s.display_name FROM staff s WHERE s.id = a.actor_id;
    UPDATE audit_log a SET (relation, care_team) =
        (SELECT x.relation, x.care_team FROM telemon_audit_relation(a.actor_id, a.patient_id) x)
    WHERE a.actor_id IS NOT NULL AND a.patient_id IS NOT NULL;
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        r.seq := n;
        r.prev_hash := previous;
        previous := sha256(previous || convert_to(telemon_audit_canonical(r), 'UTF8'));
        UPDATE audit_log SET seq = n, prev_hash = r.prev_hash, row_hash = previous
        WHERE id = r.id;
    END LOOP;
    UPDATE audit_chain SET last_seq = n, last_hash = previous;
END $$;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL;

CREATE FUNCTION telemon_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_chain;
BEGIN
    IF NEW.actor_id IS NOT NULL THEN
        SELECT display_name INTO NEW.actor_name FROM staff WHERE id = NEW.actor_id;
        IF NEW.patient_id IS NOT NULL THEN
            SELECT x.relation, x.care_team INTO NEW.relation, NEW.care_team
            FROM telemon_audit_relation(NEW.actor_id, NEW.patient_id) x;
        END IF;
    END IF;
    SELECT * INTO STRICT head FROM audit_chain FOR UPDATE;
    NEW.seq := head.last_seq + 1;
    NEW.prev_hash := head.last_hash;
    NEW.row_hash := sha256(head.last_hash || convert_to(telemon_audit_canonical(NEW), 'UTF8'));
    UPDATE audit_chain SET last_seq = NEW.seq, last_hash = NEW.row_hash;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION telemon_audit_chain() FROM PUBLIC;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION telemon_audit_chain();

-- Retention of the audit log, apart from the observations': whole rows older than p_keep (at
-- least 24 months, the Garante's minimum) are removed from the start of the chain only, so what
-- is kept stays one unbroken chain whose start audit_chain records. p_now is the clock (tests
-- simulate months with it); it can only move the cutoff back in time, never forward, so the
-- services, who may call this, cannot remove anything younger than p_keep.
CREATE FUNCTION telemon_apply_audit_retention(p_keep interval, p_now timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_chain;
    cutoff timestamptz;
    upto bigint;
    upto_hash bytea;
    removed bigint;
BEGIN
    IF p_keep IS NULL OR p_keep < interval '24 months' THEN
        RAISE EXCEPTION 'the audit log is kept at least 24 months, not %', p_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := least(coalesce(p_now, now()), now()) - p_keep;
    SELECT * INTO STRICT head FROM audit_chain FOR UPDATE;  -- no insert meanwhile
    -- The chain's prefix that is all older than the cutoff (a row's time is its transaction's
    -- start, so times need not rise strictly along the chain).
    SELECT coalesce((SELECT seq FROM audit_log WHERE at >= cutoff ORDER BY seq LIMIT 1),
                    head.last_seq + 1) - 1
    INTO upto;
    IF upto <= head.pruned_seq THEN
        RETURN 0;
    END IF;
    SELECT row_hash INTO STRICT upto_hash FROM audit_log WHERE seq = upto;
    DELETE FROM audit_log WHERE seq <= upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE audit_chain SET pruned_seq = upto, pruned_hash = upto_hash, pruned_at = now();
    RETURN removed;
END $$;
REVOKE ALL ON FUNCTION telemon_apply_audit_retention(interval, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION telemon_apply_audit_retention(interval, timestamptz) TO telemon_app;
