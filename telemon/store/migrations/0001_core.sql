-- People, places and things: who cares for whom, which gateway and devices each patient has,
-- and the records every component keeps beside the observations (alerts, notifications,
-- rejected input, audit trail).

CREATE TABLE metrics (
    id          smallint PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    loinc       text NOT NULL,
    unit        text NOT NULL
);

CREATE TABLE staff (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username           text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{2,64}$'),
    display_name       text NOT NULL,
    role               text NOT NULL CHECK (role IN ('gp', 'nurse', 'admin')),
    phone              text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email              text,
    language           text NOT NULL DEFAULT 'it' CHECK (language IN ('it', 'en')),
    quiet_hours_start  time,
    quiet_hours_end    time,
    password_hash      text,
    failed_logins      integer NOT NULL DEFAULT 0,
    locked_until       timestamptz,
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- A GP practice or the cooperative's service centre (whose duty phone receives red alerts).
CREATE TABLE care_teams (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('gp_practice', 'service_centre')),
    duty_phone  text CHECK (duty_phone ~ '^\+[1-9][0-9]{6,14}$')
);

CREATE TABLE care_team_members (
    care_team_id  bigint NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    staff_id      bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    PRIMARY KEY (care_team_id, staff_id)
);

CREATE TABLE patients (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Pseudonymous code: the only patient identifier that leaves the server (MQTT, SMS links).
    code           text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    given_name     text NOT NULL,
    family_name    text NOT NULL,
    birth_date     date,
    sex            text CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    phone          text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    gp_id          bigint NOT NULL REFERENCES staff (id),
    care_team_id   bigint REFERENCES care_teams (id),
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    discharged_at  timestamptz
);
CREATE INDEX patients_gp ON patients (gp_id);

-- Care protocols a patient follows, with per-patient overrides of the protocol's rules.
CREATE TABLE patient_protocols (
    patient_id  bigint NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    protocol    text NOT NULL,
    overrides   jsonb NOT NULL DEFAULT '{}',
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    PRIMARY KEY (patient_id, protocol)
);

CREATE TABLE gateways (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Also its MQTT username: the broker's ACL lets it publish only under its own code.
    code              text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    patient_id        bigint REFERENCES patients (id),
    registered_at     timestamptz NOT NULL DEFAULT now(),
    online            boolean NOT NULL DEFAULT false,
    last_seen_at      timestamptz,
    offline_since     timestamptz,
    software_version  text,
    outbox_depth      integer,
    outbox_oldest_at  timestamptz,
    recoveries        jsonb NOT NULL DEFAULT '{}',
    last_status       jsonb
);
CREATE INDEX gateways_patient ON gateways (patient_id);

-- The pairing table: which device belongs to which gateway (and so to which patient).
CREATE TABLE devices (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id       bigint NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    address          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('pulse_oximeter', 'blood_pressure', 'glucometer',
                                                   'thermometer', 'weight_scale')),
    manufacturer     text,
    model            text,
    serial_number    text,
    firmware         text,
    battery_pct      smallint CHECK (battery_pct BETWEEN 0 AND 100),
    rssi             smallint,
    last_seen_at     timestamptz,
    last_reading_at  timestamptz,
    paired_at        timestamptz NOT NULL DEFAULT now(),
    unpaired_at      timestamptz,
    UNIQUE (gateway_id, address)
);

CREATE TABLE alerts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id        bigint NOT NULL REFERENCES patients (id),
    protocol          text NOT NULL,
    rule              text NOT NULL,
    kind              text NOT NULL DEFAULT 'clinical' CHECK (kind IN ('clinical', 'not_measuring')),
    severity          smallint NOT NULL CHECK (severity BETWEEN 1 AND 2),  -- 1 amber, 2 red
    state             text NOT NULL DEFAULT 'open'
                      CHECK (state IN ('open', 'acknowledged', 'escalated', 'resolved')),
    opened_at         timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    metric_id         smallint REFERENCES metrics (id),
    trigger_value     double precision,
    reason            text,
    details           jsonb NOT NULL DEFAULT '{}',
    claimed_by        bigint REFERENCES staff (id),
    claimed_at        timestamptz,
    acknowledged_by   bigint REFERENCES staff (id),
    acknowledged_at   timestamptz,
    snoozed_until     timestamptz,
    escalated_at      timestamptz,
    resolved_by       bigint REFERENCES staff (id),
    resolved_at       timestamptz,
    outcome           text,
    resolution_note   text,
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);
-- The invariant 'one open alert per patient and rule' belongs to the database: two readings
-- evaluated concurrently cannot both open an alert.
CREATE UNIQUE INDEX alerts_one_open_per_rule ON alerts (patient_id, protocol, rule)
    WHERE state <> 'resolved';
CREATE INDEX alerts_triage ON alerts (severity DESC, opened_at) WHERE state <> 'resolved';
CREATE INDEX alerts_patient ON alerts (patient_id, opened_at DESC);

CREATE TABLE alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES staff (id),  -- NULL: the alerts engine itself
    kind        text NOT NULL,
    from_state  text,
    to_state    text,
    severity    smallint,
    note        text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

CREATE TABLE notifications (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Written before sending; the key makes a retried or restarted send a no-op.
    idempotency_key  text NOT NULL UNIQUE,
    alert_id         bigint REFERENCES alerts (id),
    channel          text NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms')),
    recipient_kind   text NOT NULL CHECK (recipient_kind IN ('gp', 'service_centre', 'patient')),
    recipient_id     bigint REFERENCES staff (id),
    to_address       text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'undelivered',
                                       'failed', 'outboxed')),
    provider_id      text UNIQUE,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at)
    WHERE status IN ('pending', 'sending');

-- Input we could not accept, with the reason, kept where an operator can see it.
CREATE TABLE dead_letters (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    source             text NOT NULL CHECK (source IN ('mqtt', 'ble', 'http')),
    topic              text,
    gateway_code       text,
    item_index         integer,
    reason             text NOT NULL,
    detail             text NOT NULL,
    payload            bytea,
    payload_size       integer NOT NULL,
    payload_truncated  boolean NOT NULL DEFAULT false
);
CREATE INDEX dead_letters_recent ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_reason ON dead_letters (reason, received_at DESC);

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_id        bigint REFERENCES staff (id),
    actor_username  text,
    actor_role      text,
    action          text NOT NULL,
    patient_id      bigint REFERENCES patients (id),
    object_type     text,
    object_id       text,
    details         jsonb NOT NULL DEFAULT '{}',
    client_address  inet
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at DESC);

-- What the storage layer was set up with (native partitions or TimescaleDB) and its policies.
CREATE TABLE storage_settings (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    backend                text NOT NULL CHECK (backend IN ('native', 'timescaledb')),
    retention              interval NOT NULL,
    compress_after         interval NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
