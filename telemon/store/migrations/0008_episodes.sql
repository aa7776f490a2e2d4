-- Clinical episodes: a patient's findings (alerts rows) that are open at the same time form one
-- episode, which is what a nurse works and what texts a GP. A finding keeps its own row, its
-- debounce state and the invariant 'one open finding per patient and rule'; the episode adds
-- one open row per patient, with the lifecycle people act on and a finite escalation chain.
CREATE TABLE episodes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id          bigint NOT NULL REFERENCES patients (id),
    -- The worst open finding, for the queue; and the worst open finding routed to the GP,
    -- which decides the SMS and the escalation chain (0: nothing that texts anyone).
    severity            smallint NOT NULL CHECK (severity BETWEEN 1 AND 2),
    alert_level         smallint NOT NULL DEFAULT 0 CHECK (alert_level BETWEEN 0 AND 2),
    -- The highest alert level the episode has reached: only going above it texts again, so a
    -- value flapping on a band's edge (red, amber, red) is one episode that texted once.
    peak_level          smallint NOT NULL DEFAULT 0 CHECK (peak_level BETWEEN 0 AND 2),
    -- The protocol whose escalation chain applies: that of the finding that set alert_level.
    protocol            text,
    state               text NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'acknowledged', 'escalated', 'resolved')),
    opened_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    -- Chain position: the steps taken at this alert level, and when the next one is due
    -- (NULL: the chain has ended, is held by an acknowledgement, or there is none).
    escalation_step     integer NOT NULL DEFAULT 0,
    next_escalation_at  timestamptz,
    claimed_by          bigint REFERENCES staff (id),
    claimed_at          timestamptz,
    acknowledged_by     bigint REFERENCES staff (id),
    acknowledged_at     timestamptz,
    snoozed_until       timestamptz,
    escalated_at        timestamptz,
    resolved_by         bigint REFERENCES staff (id),
    resolved_at         timestamptz,
    outcome             text,
    resolution_note     text,
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);
-- Findings opened at nearly the same time by two engines join one episode: the second insert
-- waits for the first to commit and then finds it.
CREATE UNIQUE INDEX episodes_one_open_per_patient ON episodes (patient_id) WHERE state <> 'resolved';
CREATE INDEX episodes_triage ON episodes (severity DESC, opened_at) WHERE state <> 'resolved';
CREATE INDEX episodes_patient ON episodes (patient_id, opened_at DESC);
CREATE INDEX episodes_escalation_due ON episodes (next_escalation_at)
    WHERE state <> 'resolved' AND next_escalation_at IS NOT NULL;

CREATE TABLE episode_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    episode_id  bigint NOT NULL REFERENCES episodes (id),
    alert_id    bigint REFERENCES alerts (id),  -- the finding concerned, if one is
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES staff (id),  -- NULL: the alerts engine itself
    kind        text NOT NULL,
    from_state  text,
    to_state    text,
    severity    smallint,
    note        text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX episode_events_episode ON episode_events (episode_id, at);

-- A finding's routing decides whether it may text anyone (not-measuring tasks never do).
ALTER TABLE alerts
    ADD COLUMN episode_id bigint REFERENCES episodes (id),
    ADD COLUMN routing text NOT NULL DEFAULT 'gp_and_centre'
        CHECK (routing IN ('gp_and_centre', 'centre', 'centre_task'));
UPDATE alerts SET routing = 'centre_task' WHERE kind = 'not_measuring';
CREATE INDEX alerts_episode ON alerts (episode_id);

-- SMS go per episode: the idempotency key names the episode, the row keeps the finding that
-- made it (NULL for a digest).
ALTER TABLE notifications
    ADD COLUMN episode_id bigint REFERENCES episodes (id);
CREATE INDEX notifications_episode ON notifications (episode_id);
ALTER TABLE notifications DROP CONSTRAINT notifications_reason_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_reason_check
    CHECK (reason IN ('opened', 'worsened', 'escalated', 'digest'));

-- A GP may take open amber episodes as one SMS a day at this local time (Europe/Rome) instead
-- of one escalation SMS each.
ALTER TABLE staff ADD COLUMN amber_digest_at time;

-- Unresolved alerts from before episodes: one episode per patient adopts them.
INSERT INTO episodes (patient_id, severity, alert_level, peak_level, protocol, state, opened_at,
                      updated_at)
SELECT patient_id, max(severity),
       coalesce(max(severity) FILTER (WHERE routing = 'gp_and_centre'), 0),
       coalesce(max(severity) FILTER (WHERE routing = 'gp_and_centre'), 0),
       (array_agg(protocol ORDER BY severity DESC, opened_at))[1],
       CASE WHEN bool_and(state = 'acknowledged') THEN 'acknowledged' ELSE 'open' END,
       min(opened_at), max(updated_at)
FROM alerts WHERE state <> 'resolved'
GROUP BY patient_id;
UPDATE alerts a SET episode_id = e.id
FROM episodes e
WHERE e.patient_id = a.patient_id AND e.state <> 'resolved' AND a.state <> 'resolved';
-- Their SMS still waiting now follow the episode's state; acknowledgement and escalation
-- belong to the episode, so the findings themselves are open or resolved.
UPDATE notifications n SET episode_id = a.episode_id
FROM alerts a WHERE a.id = n.alert_id AND a.episode_id IS NOT NULL;
UPDATE alerts SET state = 'open' WHERE state IN ('acknowledged', 'escalated');
