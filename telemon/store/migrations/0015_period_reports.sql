-- Validated period reports (docs/dashboard.md, "Period report"): when a GP validates a patient's
-- report for a period, it is frozen as it was then. Later downloads of that period serve these
-- bytes, so a reading that arrives afterwards does not change what was signed off.
CREATE TABLE period_reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients (id),
    period_from   date NOT NULL,
    period_to     date NOT NULL,
    language      text NOT NULL CHECK (language IN ('it', 'en')),
    body_html     text NOT NULL,      -- the report's HTML body, as the print view shows it
    pdf           bytea NOT NULL,     -- the PDF laid out from that HTML
    pdf_sha256    text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    fhir_bundle   jsonb NOT NULL,     -- DiagnosticReport and its Observations, as validated
    validated_by  bigint NOT NULL REFERENCES staff (id),
    validated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (period_from <= period_to),
    -- One validation per patient and period: validating again would change a signed report.
    UNIQUE (patient_id, period_from, period_to)
);

-- What was validated stays as it was: the services add rows, never change or remove one.
REVOKE UPDATE, DELETE ON period_reports FROM telemon_app;
