-- Issue 19, identity and duplicates (docs/ingest.md, "Exactly once"): a record a device sends
-- again, or a reinstalled gateway uploads again under new sequence numbers, is stored once.
--
-- Each reading from a v2 gateway with a device time stamp carries its stable identifier
-- (telemon.identifier: the first 128 bits of a SHA-256 over the HL7 PHD IG's device id, patient,
-- device time stamp, type code, value and supplemental types), kept on the reading for export.
-- A plain nullable column: TimescaleDB adds it to compressed chunks without rewriting them.
ALTER TABLE observations ADD COLUMN identifier bytea;

-- Uniqueness lives in a table of its own. On observations a unique key must contain the
-- partition key (measured_at), and the same record uploaded twice need not get the same
-- measured_at: the gateway corrects the device's clock with the offset it measures at each
-- connection. Ingest COPYs the identifiers of a batch here before its readings; a violation
-- sends the batch down the path that skips the readings whose identifier is taken.
CREATE TABLE observation_identifiers (
    patient_id   bigint NOT NULL,
    identifier   bytea NOT NULL CHECK (length(identifier) = 16),
    measured_at  timestamptz NOT NULL,
    PRIMARY KEY (patient_id, identifier)
);
-- For retention alone; rows arrive roughly in time order, so a BRIN index costs almost nothing
-- to keep up.
CREATE INDEX observation_identifiers_measured_at
    ON observation_identifiers USING brin (measured_at);

-- Like the readings they name, identifiers are written once and removed only by retention.
REVOKE UPDATE, DELETE ON observation_identifiers FROM telemon_app;

-- Retention (0012) now also forgets the identifiers of readings past it: a record that old sent
-- again would be stored again, and dropped by the next retention run.
CREATE OR REPLACE FUNCTION telemon_apply_observation_retention()
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz := (SELECT now() - retention FROM storage_settings);
BEGIN
    IF cutoff IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM observation_identifiers WHERE measured_at < cutoff;
    RETURN telemon_drop_expired_observations(cutoff);
END $$;
