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

