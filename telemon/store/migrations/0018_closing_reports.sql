-- The closing report (docs/dashboard.md, "Closing report"): when a patient is discharged, the
-- report over the whole monitoring span is frozen like a validated period, in period_reports,
-- with kind 'closing'; validated_by is then whoever discharged the patient.
ALTER TABLE period_reports
    ADD COLUMN kind text NOT NULL DEFAULT 'period' CHECK (kind IN ('period', 'closing'));

-- A validated period and a closing report may cover the same days: one of each.
ALTER TABLE period_reports DROP CONSTRAINT period_reports_patient_id_period_from_period_to_key;
ALTER TABLE period_reports
    ADD CONSTRAINT period_reports_one_per_period UNIQUE (patient_id, kind, period_from, period_to);
-- Monitoring ends once: one closing report per patient.
CREATE UNIQUE INDEX period_reports_one_closing ON period_reports (patient_id) WHERE kind = 'closing';
