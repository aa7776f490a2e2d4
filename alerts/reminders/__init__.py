"""SMS reminders to patients who missed a scheduled measurement (docs/alerts.md, "Patient
reminders"): decided by pure functions (:mod:`.schedule`), worded without any clinical value
(:mod:`.texts`), written to the same idempotent outbox as the clinical SMS (:mod:`.enqueue`)."""
