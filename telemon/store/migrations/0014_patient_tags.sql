-- A GP's own labels on their patients ("diuretic titration", "home visit"): private to the GP
-- who wrote them, so a colleague's tags never clutter another list.
CREATE TABLE patient_tags (
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    patient_id  bigint NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    tag         text NOT NULL CHECK (char_length(tag) BETWEEN 1 AND 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, patient_id, tag)
);
CREATE INDEX patient_tags_by_tag ON patient_tags (staff_id, tag);
