-- The dashboard's own state: server-side sessions and the login attempts behind its rate limit.

-- Only a hash of the session token is stored: a copy of this table opens no session.
CREATE TABLE dashboard_sessions (
    token_hash      text PRIMARY KEY,
    staff_id        bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    client_address  inet,
    user_agent      text
);
CREATE INDEX dashboard_sessions_staff ON dashboard_sessions (staff_id);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- Per-address throttling: an attacker spraying many usernames locks no single account.
CREATE TABLE dashboard_login_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    username        text NOT NULL,
    client_address  inet,
    succeeded       boolean NOT NULL
);
CREATE INDEX dashboard_login_attempts_address ON dashboard_login_attempts (client_address, at DESC);
