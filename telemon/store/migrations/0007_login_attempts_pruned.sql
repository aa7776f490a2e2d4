-- Login attempts only count within the per-address window (dashboard.accounts.ADDRESS_WINDOW):
-- each attempt deletes the rows that aged out of it, found by this index. A spray of failures
-- from many addresses no longer grows the table for good. The audit log keeps every failure.
CREATE INDEX dashboard_login_attempts_at ON dashboard_login_attempts (at);
