-- Enrolment without JSON (dashboard/enrolment.py), the kit (dashboard/kit.py) and discharge.

-- The language a patient reads SMS and the device card in. Migration 0016 (patient reminders)
-- adds the same column; IF NOT EXISTS lets either branch come first.
ALTER TABLE patients
    ADD COLUMN IF NOT EXISTS language text NOT NULL DEFAULT 'it' CHECK (language IN ('it', 'en'));

-- Consent to telemonitoring (date, and the admin who recorded it), and how monitoring ended:
-- discharged_at (0001) stops the engine's evaluation; the reason and the clinical date are here.
ALTER TABLE patients
    ADD COLUMN consent_date date,
    ADD COLUMN consent_recorded_by bigint REFERENCES staff (id),
    ADD COLUMN discharge_date date,
    ADD COLUMN discharge_reason text,
    ADD CONSTRAINT patients_consent_recorded
        CHECK ((consent_date IS NULL) = (consent_recorded_by IS NULL));

-- The device card (tesserino dispositivi) names each device by its UDI where it has one; a
-- swapped device keeps its row (readings name it) and points at the one that replaced it.
ALTER TABLE devices
    ADD COLUMN udi text,
    ADD COLUMN replaced_by bigint REFERENCES devices (id),
    ADD COLUMN return_reason text;

-- Who changed a patient's enrolment, what, when and why: every change of the form, the kit and
-- the discharge, with the values before and after ({"field": [before, after]}).
CREATE TABLE enrolment_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES patients (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint NOT NULL REFERENCES staff (id),
    action      text NOT NULL CHECK (action IN ('enrol', 'edit', 'discharge', 'kit.assign',
                                                'kit.swap', 'kit.return')),
    changes     jsonb NOT NULL DEFAULT '{}',
    reason      text
);
CREATE INDEX enrolment_history_patient ON enrolment_history (patient_id, at DESC);
-- History is appended, never rewritten (as the audit log).
REVOKE UPDATE, DELETE ON enrolment_history FROM telemon_app;
