-- Debounce state of the alerts engine per (patient, protocol, rule): confirmation streaks, the
-- level of the open alert, the newest reading already counted and the escalation timers. With
-- it a restarted engine resumes exactly where it stopped instead of counting readings twice.
-- Times are epoch seconds (-1: none), the unit of the engine's arrays. A missing row is the
-- initial state, so only patients with something to remember take space.
CREATE TABLE alert_rule_state (
    patient_id     bigint NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    protocol       text NOT NULL,
    rule           text NOT NULL,
    level          smallint NOT NULL CHECK (level BETWEEN 0 AND 2),
    count          bigint NOT NULL,
    since          bigint NOT NULL,
    last_at        bigint NOT NULL,
    opened_at      bigint NOT NULL,
    notified_at    bigint NOT NULL,
    stage          bigint NOT NULL,
    acked          boolean NOT NULL,
    snoozed_until  bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (protocol, patient_id, rule)
);
