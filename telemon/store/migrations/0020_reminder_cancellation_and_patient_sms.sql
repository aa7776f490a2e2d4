-- Patient reminders, finished (issue 18): a reminder waiting in the outbox is cancelled once it
-- lost its point, and a patient opts out (or back in) by replying to it.

-- What a reminder asks for: the measurement, and the newest reliable reading of it when the row
-- was written. A reading measured after that one means the patient measured meanwhile.
ALTER TABLE notifications
    ADD COLUMN reminder_metric_id smallint REFERENCES metrics (id),
    ADD COLUMN reminder_anchor timestamptz;

-- Reminders written before this migration: the metric is in their stage ('reminder:spo2:3');
-- their anchor is unknown, and the sender counts from when the row was written instead.
UPDATE notifications n SET reminder_metric_id = m.id
FROM metrics m
WHERE n.reason = 'reminder' AND m.key = split_part(n.stage, ':', 2);

-- Who recorded an opt-out: a member of staff on the patient's word (opt_out_by names them), or
-- the patient, replying to a reminder by SMS (nobody of the staff: opt_out_by stays empty).
ALTER TABLE patients
    ADD COLUMN reminders_opt_out_via text CHECK (reminders_opt_out_via IN ('staff', 'sms'));
UPDATE patients SET reminders_opt_out_via = 'staff' WHERE reminders_opt_out_at IS NOT NULL;
ALTER TABLE patients
    DROP CONSTRAINT patients_reminders_opt_out_recorded,
    ADD CONSTRAINT patients_reminders_opt_out_recorded CHECK (
        (reminders_opt_out_at IS NULL AND reminders_opt_out_by IS NULL
         AND reminders_opt_out_via IS NULL)
        OR (reminders_opt_out_at IS NOT NULL AND reminders_opt_out_via = 'staff'
            AND reminders_opt_out_by IS NOT NULL)
        OR (reminders_opt_out_at IS NOT NULL AND reminders_opt_out_via = 'sms'
            AND reminders_opt_out_by IS NULL)
    );

-- Every SMS Twilio forwards to us (a reply to a reminder, or anything sent to our number), with
-- what we made of it. Nobody reads these messages as they arrive: the reply says so.
CREATE TABLE inbound_sms (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    message_sid  text NOT NULL UNIQUE,  -- Twilio retries a webhook: one row per message
    from_address text NOT NULL,
    body         text NOT NULL,
    patient_id   bigint REFERENCES patients (id),
    outcome      text NOT NULL
        CHECK (outcome IN ('opt_out', 'opt_in', 'unrecognised', 'unknown_number'))
);
CREATE INDEX inbound_sms_received ON inbound_sms (received_at DESC);
-- A record of what patients wrote: appended, never rewritten (as the audit log).
REVOKE UPDATE, DELETE ON inbound_sms FROM telemon_app;
