-- Patient reminders (alerts/reminders): an SMS to the patient when a scheduled measurement is
-- missed, in the patient's language, never with clinical values.

-- The language a patient reads SMS in; existing patients are Italian, as the cooperative is.
ALTER TABLE patients
    ADD COLUMN language text NOT NULL DEFAULT 'it' CHECK (language IN ('it', 'en')),
    -- Opt-out of reminders, and who recorded it (a nurse or an admin, on the patient's word).
    -- Clearing both opts the patient back in; the audit log keeps the history.
    ADD COLUMN reminders_opt_out_at timestamptz,
    ADD COLUMN reminders_opt_out_by bigint REFERENCES staff (id),
    ADD CONSTRAINT patients_reminders_opt_out_recorded
        CHECK ((reminders_opt_out_at IS NULL) = (reminders_opt_out_by IS NULL));

-- A reminder is about a patient, not an episode: the row names the patient, so the SMS pages
-- list it and the daily cap counts it.
ALTER TABLE notifications ADD COLUMN patient_id bigint REFERENCES patients (id);
CREATE INDEX notifications_patient ON notifications (patient_id, created_at)
    WHERE patient_id IS NOT NULL;

ALTER TABLE notifications DROP CONSTRAINT notifications_reason_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_reason_check
    CHECK (reason IN ('opened', 'worsened', 'escalated', 'digest', 'reminder'));
