-- Several organisations in one installation (issue 20): health agencies and cooperatives, each
-- with its care teams, staff and (through their GP) patients.
--
-- A care team belongs to one organisation; a member of staff to one organisation (its admins
-- and privacy officers act within it only, dashboard/authz.py). A patient belongs to their
-- GP's organisation and is assigned to one care team, which may be another organisation's: a
-- shared service centre serves the patients of several organisations' GPs.
--
-- The installation starts with one organisation: every existing row joins it, and rows
-- inserted without naming one (the demo seed, the console) go to the first organisation, so
-- an installation of one organisation works as before.

CREATE TABLE organisations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO organisations (name) VALUES ('Telemon');

CREATE FUNCTION telemon_default_organisation() RETURNS bigint
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT min(id) FROM organisations
$$;

ALTER TABLE care_teams
    ADD COLUMN organisation_id bigint REFERENCES organisations (id)
        DEFAULT telemon_default_organisation();
UPDATE care_teams SET organisation_id = telemon_default_organisation();
ALTER TABLE care_teams ALTER COLUMN organisation_id SET NOT NULL;
CREATE INDEX care_teams_organisation ON care_teams (organisation_id);

ALTER TABLE staff
    ADD COLUMN organisation_id bigint REFERENCES organisations (id)
        DEFAULT telemon_default_organisation();
UPDATE staff SET organisation_id = telemon_default_organisation();
ALTER TABLE staff ALTER COLUMN organisation_id SET NOT NULL;
CREATE INDEX staff_organisation ON staff (organisation_id);


-- Oscuramento (issue 20; the Garante's dossier guidelines of 2015, EHDS art. 8): at the
-- patient's request, some of their data is hidden from everyone but their GP: one care
-- protocol (its findings and the readings of the metrics it watches), one metric category (a
-- metric, or a group read together such as blood pressure), or a period. The alerts engine
-- still evaluates everything (the GP is alerted); the dashboard leaves the hidden rows out of
-- every other reader's pages, API, FHIR and exports (dashboard/restrictions.py).
CREATE TABLE patient_restrictions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('protocol', 'metric_category', 'period')),
    protocol      text,
    category      text,
    -- The readings hidden: the category's metrics or the protocol's, resolved when recorded
    -- (a protocol changed later does not widen or narrow what the patient asked).
    metric_ids    smallint[] NOT NULL DEFAULT '{}',
    period_from   timestamptz,
    period_to     timestamptz,
    requested_on  date NOT NULL,  -- the day the patient asked
    reason        text CHECK (length(reason) <= 500),
    recorded_by   bigint NOT NULL REFERENCES staff (id),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoked_by    bigint REFERENCES staff (id),
    CHECK ((kind = 'protocol') = (protocol IS NOT NULL)),
    CHECK ((kind = 'metric_category') = (category IS NOT NULL)),
    CHECK ((kind = 'period') = (period_from IS NOT NULL AND period_to IS NOT NULL)),
    CHECK (period_from < period_to),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX patient_restrictions_active ON patient_restrictions (patient_id)
    WHERE revoked_at IS NULL;
