-- Oscuramento of a blood pressure hides the whole measurement (issue 20): a restriction recorded
-- before hid the systolic and diastolic readings and left the cuff's mean pressure showing,
-- from which the others can be estimated. Restrictions now resolve a panel whole
-- (telemon.metrics.PANELS); the ones in force are widened the same way. Metric ids: systolic 3,
-- diastolic 4, mean arterial pressure 5 (telemon/metrics.py).
UPDATE patient_restrictions
SET metric_ids = ARRAY(
    SELECT DISTINCT m FROM unnest(metric_ids || ARRAY[3, 4, 5]::smallint[]) AS m ORDER BY m
)
WHERE metric_ids && ARRAY[3, 4, 5]::smallint[];
